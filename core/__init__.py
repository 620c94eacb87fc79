"""peersync's pure core: the endpoint grammar and address policy, peer rendering and node-id derivation,
bech32 derivations, the contracts, the desired-peer computation and the registry's state.

No I/O, no clock, no randomness, and no import of `workflows`, `activities` or `workers` (tests/unit/
test_layers.py): workflows, activities and the CLI all import it, so each rule is written once.
"""
