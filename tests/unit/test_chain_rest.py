"""ChainRest against a loopback gateway serving the real SDK 0.50 / ICS JSON shapes of reference §2-3."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from activities.chain_rest import ED25519, ChainError, ChainRest, parse_validator
from activities.chain_view import launched_memberships, to_record
from core.policy import STRICT

# A real 0.50 gateway validator (reference/chain-wire-formats.md §2); its key is the CometBFT 0.38.6 vector.
REAL_ROW: dict[str, Any] = {
    "operator_address": "cosmosvaloper1secvjzt473ddvgtsv2lwrpe4r88hyrma7dtl87",
    "consensus_pubkey": {"@type": ED25519, "key": "rblUWQSomA8pUbGVINfs3ZEzL0oWzoG6+KAiutXJvuY="},
    "jailed": False,
    "status": "BOND_STATUS_BONDED",
    "tokens": "100000000",
    "delegator_shares": "100000000.000000000000000000",
    "description": {
        "moniker": "mynode",
        "identity": "",
        "website": "",
        "security_contact": "",
        "details": "",
    },
    "unbonding_height": "0",
    "unbonding_time": "1970-01-01T00:00:00Z",
    "commission": {
        "commission_rates": {
            "rate": "0.100000000000000000",
            "max_rate": "0.200000000000000000",
            "max_change_rate": "0.010000000000000000",
        },
        "update_time": "2024-06-05T14:26:30.900531975Z",
    },
    "min_self_delegation": "1",
    "unbonding_on_hold_ref_count": "0",
    "unbonding_ids": [],
}
VALCONS = "cosmosvalcons1l9h92mefd9mandh48enl2wgdas23kg8l0l05hp"


def row(n: int, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(REAL_ROW)
    out["description"]["moniker"] = f"v{n}"
    out["description"]["details"] = f"p2p=203.0.113.{n}"
    out.update(changes)
    return out


Handler = Callable[[web.Request], Awaitable[web.Response]]


@pytest.fixture
async def gateway() -> AsyncIterator[Callable[[dict[str, Handler]], Any]]:
    """Starts a gateway on loopback with the given routes; yields the started ChainRest client."""
    runners: list[web.AppRunner] = []
    clients: list[ChainRest] = []

    async def start(routes: dict[str, Handler]) -> ChainRest:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        client = await ChainRest(f"http://127.0.0.1:{port}", timeout=5).__aenter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.__aexit__(None, None, None)
    for runner in runners:
        await runner.cleanup()


def pages_of(rows: list[dict[str, Any]], keys: list[str], seen: list[str | None]) -> Handler:
    """Serves `rows` in len(keys)+1 pages; page i+1 is asked for with keys[i] (base64, as the SDK sends)."""
    size = -(-len(rows) // (len(keys) + 1))

    async def handler(request: web.Request) -> web.Response:
        key = request.query.get("pagination.key")
        seen.append(key)
        index = 0 if key is None else keys.index(key) + 1
        next_key = keys[index] if index < len(keys) else None
        body = {"validators": rows[index * size : (index + 1) * size], "pagination": {"next_key": next_key}}
        return web.json_response(body)

    return handler


async def test_real_validator_json_parses_and_derives_the_vector_valcons(gateway: Any) -> None:
    chain = await gateway({"/cosmos/staking/v1beta1/validators": pages_of([REAL_ROW], [], [])})
    (v,) = await chain.validators()
    assert (v.operator_address, v.status, v.tokens, v.jailed) == (
        REAL_ROW["operator_address"],
        "BOND_STATUS_BONDED",
        "100000000",
        False,
    )
    assert v.consensus_pubkey.type_url == ED25519
    assert to_record(v, STRICT, "cosmos").valcons == VALCONS


async def test_paging_follows_every_next_key_verbatim(gateway: Any) -> None:
    # Keys with "+", "/" and "=" must travel URL-encoded and come back unchanged.
    keys = ["FPMq+cQ==", "a/b+c/d="]
    seen: list[str | None] = []
    rows = [row(n) for n in range(1, 8)]
    chain = await gateway({"/cosmos/staking/v1beta1/validators": pages_of(rows, keys, seen)})
    got = await chain.validators()
    assert [v.description.moniker for v in got] == [f"v{n}" for n in range(1, 8)]
    assert seen == [None, *keys]


async def test_fields_a_newer_sdk_adds_are_ignored(gateway: Any) -> None:
    newer = row(1, future_field={"x": 1})
    newer["description"]["metadata"] = {"profile_pic_uri": "https://x"}  # SDK 0.53 Description
    chain = await gateway({"/cosmos/staking/v1beta1/validators": pages_of([newer], [], [])})
    (v,) = await chain.validators()
    assert v.description.details == "p2p=203.0.113.1"


def test_a_key_type_the_protos_do_not_know_costs_only_its_valcons() -> None:
    v = parse_validator(row(1, consensus_pubkey={"@type": "/cosmos.crypto.bls12_381.PubKey", "key": "AAAA"}))
    assert (v.consensus_pubkey.type_url, v.consensus_pubkey.key) == ("/cosmos.crypto.bls12_381.PubKey", "")
    record = to_record(v, STRICT, "cosmos")
    assert record.valcons == ""
    assert record.moniker == "v1"


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (row(1, jailed="no"), "jailed"),
        (row(1, tokens=5), "tokens"),
        ({**row(1), "operator_address": ""}, "operator_address"),
        (row(1, consensus_pubkey={"@type": ED25519, "key": "not base64!"}), "consensus_pubkey"),
    ],
)
async def test_a_malformed_validator_is_a_specific_chain_error(
    gateway: Any, bad: dict[str, Any], words: str
) -> None:
    chain = await gateway({"/cosmos/staking/v1beta1/validators": pages_of([row(2), bad], [], [])})
    with pytest.raises(
        ChainError, match=r"GET http://127\.0\.0\.1:\d+/cosmos/staking/v1beta1/validators: validator .*"
    ) as err:
        await chain.validators()
    assert words in str(err.value)


async def test_gateway_errors_carry_status_and_message(gateway: Any) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            {"code": 3, "message": "unknown consumer chain: 9", "details": []}, status=400
        )

    chain = await gateway({"/interchain_security/ccv/provider/opted_in_validators/{cid}": refuse})
    with pytest.raises(
        ChainError,
        match=r"GET http://127\.0\.0\.1:\d+/interchain_security/ccv/provider/opted_in_validators/9: HTTP 400: 'unknown consumer chain: 9'",
    ):
        await chain.opted_in("9")


async def test_ics_reads_stay_plain_json(gateway: Any) -> None:
    async def chains(request: web.Request) -> web.Response:
        chain = {"chain_id": "pion-1", "consumer_id": "0", "phase": "CONSUMER_PHASE_LAUNCHED", "top_N": 0}
        return web.json_response({"chains": [chain], "pagination": {"next_key": None, "total": "1"}})

    async def opted(request: web.Request) -> web.Response:
        return web.json_response({"validators_provider_addresses": [VALCONS]})

    chain = await gateway(
        {
            "/interchain_security/ccv/provider/consumer_chains/CONSUMER_PHASE_LAUNCHED": chains,
            "/interchain_security/ccv/provider/opted_in_validators/0": opted,
        }
    )
    (membership,) = await launched_memberships(chain)
    assert (membership.chain_id, membership.opted_in) == ("pion-1", [VALCONS])
