"""The chain as peersync needs it: validator records with parsed endpoints, and who runs which consumer.

Built on ChainRest; pure transformations apart from the reads.
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.chain_rest import ED25519, ChainRest, Validator
from core.addresses import AddressError, valcons_address, valoper_to_account
from core.contracts import EndpointStatus, ValidatorRecord
from core.endpoint import extract_endpoint
from core.policy import EndpointPolicy


def to_record(v: Validator, policy: EndpointPolicy, prefix: str) -> ValidatorRecord:
    found = extract_endpoint(v.description.details, policy)
    valcons = ""
    if v.consensus_pubkey.type_url == ED25519:
        try:
            valcons = valcons_address(v.consensus_pubkey.raw(), prefix)
        except AddressError:  # a malformed key: the validator matches no opt-in, the rest still count
            valcons = ""
    return ValidatorRecord(
        operator_address=v.operator_address,
        moniker=v.description.moniker,
        valcons=valcons,
        bond_status=v.status,
        jailed=v.jailed,
        details=v.description.details,
        endpoint=found.raw,
        status=EndpointStatus(found.status),
        reason=found.reason,
        canonical=found.endpoint.render() if found.endpoint else None,
    )


async def validator_records(chain: ChainRest, policy: EndpointPolicy, prefix: str) -> list[ValidatorRecord]:
    return [to_record(v, policy, prefix) for v in await chain.validators()]


class ConsumerMembership(BaseModel):
    consumer_id: str
    chain_id: str
    opted_in: list[str]  # valcons


async def launched_memberships(chain: ChainRest) -> list[ConsumerMembership]:
    return [
        ConsumerMembership(
            consumer_id=c.consumer_id, chain_id=c.chain_id, opted_in=await chain.opted_in(c.consumer_id)
        )
        for c in await chain.launched_consumers()
    ]


async def edit_heights(chain: ChainRest, operators: list[str], prefix: str) -> dict[str, int]:
    """Height of each operator's newest successful MsgEditValidator (absent when none is indexed)."""
    heights = {}
    for op in operators:
        try:
            account = valoper_to_account(op, prefix)
        except AddressError:
            continue
        height = await chain.latest_edit_height(account)
        if height is not None:
            heights[op] = height
    return heights
