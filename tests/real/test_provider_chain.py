"""The real ICS provider chain (issue 10, item 3): the product's own readers and parsers against the real REST
gateway, CometBFT RPC and websocket of interchain-security-pd v7.0.1, with consumers launched through
MsgCreateConsumer / MsgOptIn / MsgUpdateConsumer and endpoint moves signed with the test keys.

One chain for the module (about 10 s to start and launch both consumers on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import websockets

import activities.chain_rest as chain_rest
from activities.chain_rest import ChainError, ChainRest, Validator
from activities.chain_view import edit_heights, launched_memberships, validator_records
from core.addresses import account_to_valoper, valoper_to_account
from core.contracts import EndpointStatus
from core.policy import EndpointPolicy
from devnet.real.chain import RealProvider, ValidatorSpec
from workers.watcher import QUERIES, parse_event

pytestmark = [pytest.mark.real, pytest.mark.asyncio(loop_scope="module")]

PREFIX = "cosmos"
MONIKERS = ["alice", "bob", "carol", "dave"]
ENDPOINTS = {m: f"127.0.10.{i}:26656" for i, m in enumerate(MONIKERS, start=1)}
CONSUMERS = {"consumer-1": MONIKERS, "consumer-2": ["alice", "carol"]}
POLICY = EndpointPolicy.from_setting("127.0.10.0/24")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealProvider]:
    specs = [ValidatorSpec(moniker=m, details=f"p2p={ENDPOINTS[m]}") for m in MONIKERS]
    async with RealProvider(Path(tmp_path_factory.mktemp("real-provider")), specs) as provider:
        for chain_id, opted in CONSUMERS.items():
            await provider.create_consumer(chain_id, opt_in=opted)
        print(f"real provider up in {provider.startup_seconds:.1f} s at {provider.info.rest_url}")
        yield provider


@pytest_asyncio.fixture(loop_scope="module")
async def rest(chain: RealProvider) -> AsyncIterator[ChainRest]:
    async with ChainRest(chain.info.rest_url) as client:
        yield client


async def test_validator_records_parse_every_real_validator(chain: RealProvider, rest: ChainRest) -> None:
    records = {r.moniker: r for r in await validator_records(rest, POLICY, PREFIX)}
    assert sorted(records) == MONIKERS
    for moniker, record in records.items():
        keys = chain.info.validators[moniker]
        assert record.operator_address == keys.operator
        assert record.bond_status == "BOND_STATUS_BONDED" and not record.jailed
        assert record.status == EndpointStatus.VALID, record
        assert record.canonical == ENDPOINTS[moniker]
        assert record.valcons.startswith(f"{PREFIX}valcons1")
        # The product's address conversions agree with the SDK's keyring.
        assert valoper_to_account(keys.operator, PREFIX) == keys.account
        assert account_to_valoper(keys.account, PREFIX) == keys.operator


async def test_pagination_walks_the_real_next_keys(rest: ChainRest, monkeypatch: pytest.MonkeyPatch) -> None:
    # One validator per page: every real next_key (base64 with '+', '/', '=') must survive the product's quoting.
    monkeypatch.setattr(chain_rest, "PAGE_LIMIT", 1)
    paged = [v.operator_address for v in await rest.validators()]
    monkeypatch.undo()
    assert len(paged) == len(MONIKERS) == len(set(paged))
    assert sorted(paged) == sorted(v.operator_address for v in await rest.validators())


async def test_launched_memberships_are_the_chains_own_consensus_addresses(
    chain: RealProvider, rest: ChainRest
) -> None:
    valcons = {r.moniker: r.valcons for r in await validator_records(rest, POLICY, PREFIX)}
    memberships = {m.chain_id: m for m in await launched_memberships(rest)}
    assert sorted(memberships) == sorted(CONSUMERS)
    for chain_id, opted in CONSUMERS.items():
        # valcons the product derives from each consensus_pubkey == the addresses ICS itself reports.
        assert sorted(memberships[chain_id].opted_in) == sorted(valcons[m] for m in opted)
    ids = {m.consumer_id for m in memberships.values()}
    assert len(ids) == len(CONSUMERS)


async def test_chain_errors_carry_the_gateways_message(rest: ChainRest) -> None:
    # The gateway's google.rpc.Status message reaches the error (ChainRest quotes it with repr).
    with pytest.raises(ChainError, match=r"HTTP 400: .unknown consumer chain: 99"):
        await rest.opted_in("99")
    with pytest.raises(ChainError, match=r"HTTP 501: .Not Implemented"):
        await rest.get("/cosmos/no_such_module/v1/x")


async def test_edit_validator_reaches_websocket_rest_and_tx_search(
    chain: RealProvider, rest: ChainRest
) -> None:
    bob = chain.info.validators["bob"]
    new_endpoint = "127.0.10.42:26656"
    ws_url = chain.info.rpc_url.replace("http://", "ws://") + "/websocket"
    async with websockets.connect(ws_url, open_timeout=10) as ws:
        # Exactly the watcher's subscription (the MsgEditValidator query) and its acknowledgement test.
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "method": "subscribe", "id": 1, "params": {"query": QUERIES[1]}})
        )
        ack = json.loads(await ws.recv())
        assert ack.get("id") == 1 and ack.get("result") == {}, ack
        committed = await chain.edit_validator("bob", f"p2p={new_endpoint}")
        event = json.loads(await _recv(ws))

    seen = parse_event(event)
    assert seen is not None, event
    assert (seen.height, seen.sender, seen.code) == (committed.height, bob.account, 0)

    # The watcher's single-validator read, then the registry's full read, see the move.
    body = await rest.get(f"/cosmos/staking/v1beta1/validators/{bob.operator}")
    assert Validator.model_validate(body["validator"]).description.details == f"p2p={new_endpoint}"
    records = {r.moniker: r for r in await validator_records(rest, POLICY, PREFIX)}
    assert records["bob"].canonical == new_endpoint
    # tx_search through the REST gateway finds it at the committed height (the registry's edit heights).
    assert await edit_heights(rest, [bob.operator, chain.info.validators["dave"].operator], PREFIX) == {
        bob.operator: committed.height
    }


async def _recv(ws: websockets.ClientConnection, timeout: float = 20.0) -> str | bytes:
    async with asyncio.timeout(timeout):
        return await ws.recv()
