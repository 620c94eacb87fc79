"""Node-id source `discovered`: the registry's refresh asks the node at each validator's published endpoint to
prove its id (the authenticated probe), for the chains this cluster runs with `peersync.io/node-ids:
discovered`. Only what differs from what the registry holds comes back, so a quiet refresh stays small.
"""

from __future__ import annotations

import asyncio

from activities.chain_view import ConsumerMembership
from activities.p2p_identity import prove_node_id
from activities.probe import resolve
from core.contracts import ProvedNodeId, ValidatorRecord
from core.endpoint import Endpoint, EndpointError
from core.node_ids import discovery_targets, proof_fingerprint, proved_at
from core.policy import EndpointPolicy
from core.secret_connection import HandshakeError

PROBE_SECONDS = 3.0  # per endpoint; all run at once, inside the refresh's first (10 s) local attempt
MAX_AT_ONCE = 32


async def prove_at(
    endpoint: Endpoint, policy: EndpointPolicy, timeout: float = PROBE_SECONDS
) -> ProvedNodeId:
    """The id the node at `endpoint` proves, or why it proved none (a DNS name is resolved under the policy)."""
    where = endpoint.render()
    try:
        addresses = await resolve(endpoint, policy)
        node_id = await prove_node_id(addresses[0], endpoint.port or 0, timeout)
    except HandshakeError as exc:
        return ProvedNodeId(endpoint=where, reason=exc.reason)
    except EndpointError as exc:
        return ProvedNodeId(endpoint=where, reason=f"{where}: {exc.reason}")
    except OSError as exc:
        return ProvedNodeId(
            endpoint=where, reason=f"the node at {where} did not answer: {exc.strerror or exc}"
        )
    return ProvedNodeId(endpoint=where, node_id=node_id)


async def discovered_node_ids(
    records: list[ValidatorRecord],
    memberships: list[ConsumerMembership],
    chains: set[str],
    local_validator: str | None,
    known: dict[str, dict[str, str]],
    policy: EndpointPolicy,
) -> dict[str, dict[str, ProvedNodeId]]:
    """operator -> chain id -> proof, for the proofs that differ from `known` (their fingerprints)."""
    opted = {m.chain_id: m.opted_in for m in memberships}
    targets = [
        (op, chain_id, endpoint)
        for op, chain_id, endpoint in discovery_targets(records, opted, chains, local_validator)
        if not proved_at(known.get(op, {}).get(chain_id), endpoint.render())
    ]
    gate = asyncio.Semaphore(MAX_AT_ONCE)

    async def one(endpoint: Endpoint) -> ProvedNodeId:
        async with gate:
            return await prove_at(endpoint, policy)

    proofs = await asyncio.gather(*(one(endpoint) for _, _, endpoint in targets))
    changed: dict[str, dict[str, ProvedNodeId]] = {}
    for (op, chain_id, _), proof in zip(targets, proofs, strict=True):
        if proof_fingerprint(proof) != known.get(op, {}).get(chain_id):
            changed.setdefault(op, {})[chain_id] = proof
    return changed
