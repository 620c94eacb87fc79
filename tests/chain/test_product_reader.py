"""The product's chain reader (cosmpy protobuf types over aiohttp) against the emulator, paging included."""

from __future__ import annotations

from activities.chain_rest import PAGE_LIMIT, ChainRest
from activities.chain_view import launched_memberships, validator_records
from core.policy import EndpointPolicy

from .conftest import Devnet


async def test_every_validator_across_pages_with_its_valcons(big_devnet: Devnet) -> None:
    chain_state = big_devnet.emulator.chain
    assert len(chain_state.validators) > PAGE_LIMIT  # more than one page, so next_key is followed
    async with ChainRest(big_devnet.rest) as chain:
        records = await validator_records(chain, EndpointPolicy(), "cosmos")
        memberships = await launched_memberships(chain)
    assert sorted(r.operator_address for r in records) == sorted(chain_state.validators)
    by_op = {v.operator: v.addr.valcons for v in chain_state.validators.values()}
    assert all(r.valcons == by_op[r.operator_address] for r in records)
    valcons = {r.valcons for r in records}
    assert memberships and all(set(m.opted_in) <= valcons for m in memberships)
