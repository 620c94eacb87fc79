"""`/websocket` subscriptions through the `websockets` client, as the watcher uses them."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from core.addresses import valoper_to_account

from .conftest import Devnet

EDIT_QUERY = "tm.event='Tx' AND message.action='/cosmos.staking.v1beta1.MsgEditValidator'"
RECEIVE_TIMEOUT = 5.0


def unix_time(rfc3339_nano: str) -> float:
    whole, _, fraction = rfc3339_nano.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{fraction or 0}")


async def admin(devnet: Devnet, path: str, body: dict[str, Any], expect: int = 200) -> Any:
    return await asyncio.to_thread(devnet.admin, path, body, expect)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))


async def call(ws: ClientConnection, request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        request["params"] = params
    await ws.send(json.dumps(request))
    return await receive(ws)


async def subscribe(ws: ClientConnection, request_id: Any, query: str) -> None:
    ack = await call(ws, request_id, "subscribe", {"query": query})
    assert ack == {"jsonrpc": "2.0", "id": request_id, "result": {}}


async def edit(devnet: Devnet, moniker: str, last_octet: int, **extra: Any) -> dict[str, Any]:
    body = {"validator": moniker, "details": f"p2p={devnet.ip(last_octet)}", **extra}
    return await admin(devnet, "edit_validator", body)


async def test_edit_validator_event_has_the_real_shape(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, 1, EDIT_QUERY)
        committed = await edit(devnet, "carol", 33)
        message = await receive(ws)
    assert message["jsonrpc"] == "2.0" and message["id"] == 1
    result = message["result"]
    assert result["query"] == EDIT_QUERY
    assert result["data"]["type"] == "tendermint/event/Tx"
    tx_result = result["data"]["value"]["TxResult"]
    assert tx_result["height"] == str(committed["height"])
    assert "index" not in tx_result  # omitempty on the websocket
    outcome = tx_result["result"]
    assert not {"code", "log", "info", "codespace"} & set(outcome)
    assert outcome["gas_wanted"] == "200000"
    attributes = [a for e in outcome["events"] for a in e["attributes"]]
    assert all(set(a) == {"key", "value", "index"} for a in attributes)
    events = result["events"]
    carol = devnet.validator("carol")
    assert events["tm.event"] == ["Tx"]
    assert events["tx.height"] == [str(committed["height"])]
    assert events["tx.hash"] == [committed["txhash"]]
    assert events["message.action"] == ["/cosmos.staking.v1beta1.MsgEditValidator"]
    assert events["message.sender"] == [valoper_to_account(carol["operator_address"])]
    assert events["message.module"] == ["staking"]
    assert "edit_validator.min_self_delegation" in events and "tx.acc_seq" in events


async def test_non_matching_tx_is_not_delivered(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, "watch", EDIT_QUERY)
        await admin(devnet, "opt_in", {"validator": "dave", "consumer": "consumer-2"})
        committed = await edit(devnet, "dave", 40)
        # The opt_in committed first; the first thing delivered must still be the edit.
        message = await receive(ws)
    assert message["id"] == "watch"
    assert message["result"]["events"]["tx.hash"] == [committed["txhash"]]


async def test_failed_txs(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, 1, EDIT_QUERY)
        await subscribe(ws, 2, "tm.event='Tx'")
        failed = await edit(devnet, "bob", 50, fail=True)
        any_tx = await receive(ws)
        assert any_tx["id"] == 2  # SDK 0.50 keeps only ante events on failure: no message.action
        outcome = any_tx["result"]["data"]["value"]["TxResult"]["result"]
        assert outcome["code"] == 11 and outcome["codespace"] == "sdk" and "out of gas" in outcome["log"]
        assert failed["code"] == 11
        # A chain variant that keeps message events delivers the failed tx on the action query too.
        kept = await edit(devnet, "bob", 51, fail=True, fail_keeps_message_events=True)
        deliveries = {(m := await receive(ws))["id"]: m for _ in range(2)}
    assert set(deliveries) == {1, 2}
    assert deliveries[1]["result"]["events"]["tx.hash"] == [kept["txhash"]]
    assert deliveries[1]["result"]["data"]["value"]["TxResult"]["result"]["code"] == 11
    assert devnet.validator("bob")["details"] == f"p2p={devnet.ip(2)}"  # no state change


async def test_unsubscribe_stops_delivery(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, 1, EDIT_QUERY)
        await subscribe(ws, 2, "tm.event = 'Tx'")
        assert await call(ws, 3, "unsubscribe", [EDIT_QUERY]) == {"jsonrpc": "2.0", "id": 3, "result": {}}
        await edit(devnet, "alice", 60)
        await edit(devnet, "alice", 61)
        ids = [(await receive(ws))["id"] for _ in range(2)]
        assert ids == [2, 2]
        gone = await call(ws, 4, "unsubscribe", {"query": EDIT_QUERY})
        assert gone["error"] == {
            "code": -32603,
            "message": "Internal error",
            "data": "subscription not found",
        }
        assert (await call(ws, 5, "unsubscribe_all"))["result"] == {}
        assert (await call(ws, 6, "unsubscribe_all"))["error"]["data"] == "subscription not found"


async def test_subscription_limits_and_errors(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        for i in range(5):
            await subscribe(ws, i, f"tm.event='Tx' AND tx.height>{i}")
        sixth = await call(ws, 6, "subscribe", {"query": "tm.event='NewBlock'"})
        assert sixth == {
            "jsonrpc": "2.0",
            "id": 6,
            "error": {
                "code": -32603,
                "message": "Internal error",
                "data": "max_subscriptions_per_client 5 reached",
            },
        }
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, 1, EDIT_QUERY)
        spaced = EDIT_QUERY.replace("=", " = ")
        duplicate = await call(ws, 2, "subscribe", {"query": spaced})
        assert duplicate["error"]["data"] == "already subscribed"
        longest = "tm.event='Tx' AND message.action='" + "x" * 477 + "'"
        assert len(longest) == 512
        await subscribe(ws, 3, longest)
        too_long = await call(ws, 3, "subscribe", {"query": longest[:-1] + "x'"})
        assert too_long["error"]["data"] == "maximum query length exceeded"
        broken = await call(ws, 4, "subscribe", {"query": "tm.event='Tx' AND"})
        assert broken["error"]["data"].startswith("failed to parse query: ")
        unknown = await call(ws, 5, "no_such_method")
        assert unknown["error"] == {"code": -32601, "message": "Method not found"}
        bad_params = await call(ws, 6, "subscribe", {"query": 5})
        assert bad_params["error"]["code"] == -32603
        assert bad_params["error"]["data"].startswith("error converting json params to arguments")


async def test_requests_without_id_are_ignored_and_params_may_be_an_array(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "subscribe", "params": {"query": EDIT_QUERY}}))
        await ws.send("not json")
        parse_error = await receive(ws)
        assert parse_error["error"]["code"] == -32700 and "id" not in parse_error
        assert await call(ws, 9, "subscribe", [EDIT_QUERY]) == {"jsonrpc": "2.0", "id": 9, "result": {}}
        status = await call(ws, 10, "status")
        assert status["result"]["node_info"]["network"] == "provider"


async def test_drop_websockets_fault_closes_connections(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, 1, EDIT_QUERY)
        dropped = await admin(devnet, "faults", {"drop_websockets": True})
        assert dropped["dropped_websockets"] == 1
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT)
    # The server keeps accepting: a watcher reconnects and resubscribes.
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, 1, EDIT_QUERY)
        await edit(devnet, "alice", 70)
        assert (await receive(ws))["id"] == 1


async def test_new_block_events_and_delivery_latency(devnet: Devnet) -> None:
    async with websockets.connect(devnet.ws) as ws:
        await subscribe(ws, "blocks", "tm.event='NewBlock'")
        await subscribe(
            ws, "launch", "tm.event='NewBlockEvents' AND consumer_client_created.consumer_id EXISTS"
        )
        delays = []
        for _ in range(10):
            committed = await admin(devnet, "blocks", {"count": 1})
            message = await receive(ws)
            arrived = time.time()
            header = message["result"]["data"]["value"]["block"]["header"]
            assert header["height"] == str(committed["height"])
            delays.append(arrived - unix_time(header["time"]))
        created = await admin(devnet, "create_consumer", {"chain_id": "late-1", "phase": "launched"})
        seen = [await receive(ws) for _ in range(3)]  # create tx block, launch block, launch events
    launch = [m for m in seen if m["id"] == "launch"]
    assert len(launch) == 1
    value = launch[0]["result"]["data"]["value"]
    assert launch[0]["result"]["data"]["type"] == "tendermint/event/NewBlockEvents"
    assert value["height"] == str(created["phase_height"])
    assert launch[0]["result"]["events"]["consumer_client_created.consumer_id"] == [created["consumer_id"]]
    delays.sort()
    assert delays[len(delays) // 2] < 0.02, delays  # median commit-to-delivery under 20 ms
