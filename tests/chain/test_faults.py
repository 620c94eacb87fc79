"""Fault injection: failing and slow requests, paused blocks — with the error shapes clients would see."""

from __future__ import annotations

import json
import time

import pytest
from cosmpy.common.rest_client import RestClient
from websockets.sync.client import connect

from .conftest import Devnet


def height(devnet: Devnet) -> int:
    return int(devnet.rpc_get("status").json()["result"]["sync_info"]["latest_block_height"])


def test_fail_next_n_rest_requests(devnet: Devnet) -> None:
    devnet.admin("faults", {"target": "rest", "fail_next": 2})
    for _ in range(2):
        failed = devnet.rest_get("/cosmos/staking/v1beta1/validators")
        assert failed.status_code == 503
        assert failed.json()["code"] == 14 and failed.json()["details"] == []
    assert devnet.rest_get("/cosmos/staking/v1beta1/validators").status_code == 200
    assert devnet.rpc_get("health").status_code == 200  # rpc untouched


def test_cosmpy_surfaces_a_failing_gateway(devnet: Devnet) -> None:
    devnet.admin("faults", {"target": "rest", "fail_next": 1, "fail_status": 502})
    with pytest.raises(RuntimeError, match="502"):
        RestClient(devnet.rest).get("/cosmos/staking/v1beta1/validators")


def test_fail_next_rpc_requests_and_websocket_upgrades(devnet: Devnet) -> None:
    devnet.admin("faults", {"target": "rpc", "fail_next": 1})
    failed = devnet.rpc_get("status")
    assert failed.status_code == 500
    assert failed.json()["error"] == {
        "code": -32603,
        "message": "Internal error",
        "data": "devnet fault injected",
    }
    assert devnet.rpc_get("status").status_code == 200
    state = devnet.admin("faults", {"target": "both", "fail_next": 1})["faults"]
    assert state["rpc"]["fail_remaining"] == 1 and state["rest"]["fail_remaining"] == 1
    assert devnet.state()["height"] >= 1  # the admin API is never faulted


def test_faults_on_consumer_nodes(devnet: Devnet) -> None:
    from .test_nodes import node_rpc

    devnet.admin("faults", {"target": "nodes", "fail_next": 1})
    assert node_rpc(devnet.ip(1), "consumer-1", "status").status_code == 500
    assert node_rpc(devnet.ip(1), "consumer-1", "status").status_code == 200


def test_slow_next_requests(devnet: Devnet) -> None:
    devnet.admin("faults", {"target": "rest", "slow_next": 1, "delay": 0.3})
    started = time.monotonic()
    assert devnet.rest_get("/cosmos/staking/v1beta1/validators").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    devnet.rest_get("/cosmos/staking/v1beta1/validators")
    assert time.monotonic() - started < 0.3
    cleared = devnet.admin("faults", {"target": "all", "slow_next": 5, "delay": 2, "clear": True})
    assert cleared["faults"]["rest"]["slow_remaining"] == 5
    assert devnet.admin("faults", {"clear": True})["faults"]["rest"]["slow_remaining"] == 0


def test_paused_blocks_hold_txs_in_the_mempool(devnet: Devnet) -> None:
    devnet.admin("block_time", {"seconds": 0.05})
    assert devnet.admin("faults", {"pause_blocks": True})["paused"] is True
    paused_at = height(devnet)
    pending = devnet.admin(
        "edit_validator", {"validator": "bob", "details": f"p2p={devnet.ip(77)}"}, expect=202
    )
    assert pending["pending"] is True and pending["height"] is None
    time.sleep(0.2)  # several block periods: a paused chain must not move
    assert height(devnet) == paused_at
    assert devnet.state()["mempool"] == 1
    assert devnet.validator("bob")["details"] == f"p2p={devnet.ip(2)}"
    devnet.admin("faults", {"pause_blocks": False})
    assert height(devnet) > paused_at
    assert devnet.validator("bob")["details"] == f"p2p={devnet.ip(77)}"
    found = devnet.rpc_get("tx", hash="0x" + pending["txhash"]).json()["result"]
    assert int(found["height"]) == paused_at + 1


def test_clock_produces_empty_blocks(devnet: Devnet) -> None:
    with connect(devnet.ws) as ws:
        ws.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": ["tm.event='NewBlock'"]})
        )
        assert json.loads(ws.recv(timeout=5))["result"] == {}
        devnet.admin("block_time", {"seconds": 0.02})
        heights = [
            int(json.loads(ws.recv(timeout=5))["result"]["data"]["value"]["block"]["header"]["height"])
            for _ in range(3)
        ]
    assert heights == [heights[0], heights[0] + 1, heights[0] + 2]
