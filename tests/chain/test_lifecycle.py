"""Start/stop: loopback-only binding, clean shutdown of every listener, websocket and task."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from websockets.sync.client import connect

from core.upstream import upstream_ports
from devnet.chain.server import ChainEmulator
from devnet.loop_thread import LoopThread

from .conftest import _free_subnet, default_like_scenario


def refuses(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_only_loopback_hosts_are_accepted(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ChainEmulator(default_like_scenario(_free_subnet()), host=host)


async def _tasks_besides_current() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def test_stop_closes_listeners_websockets_and_tasks() -> None:
    net = _free_subnet()
    emulator = ChainEmulator(default_like_scenario(net, block_time=0.05))
    loop = LoopThread("chain-lifecycle")
    try:
        loop.call(emulator.start())
        rpc_port, rest_port = emulator.rpc_port, emulator.rest_port
        p2p = upstream_ports("consumer-1").p2p
        with connect(emulator.ws_url) as ws:
            ws.send(
                json.dumps({"jsonrpc": "2.0", "id": 5, "method": "subscribe", "params": ["tm.event='Tx'"]})
            )
            assert json.loads(ws.recv(timeout=5))["result"] == {}
            loop.call(emulator.stop())
            canceled = json.loads(ws.recv(timeout=5))
            assert canceled["id"] == 5
            assert canceled["error"] == {
                "code": -32000,
                "message": "Server error",
                "data": "subscription was canceled (reason: CometBFT exited)",
            }
        for port in (rpc_port, rest_port):
            assert refuses("127.0.0.1", port)
        assert refuses(f"{net}.1", p2p)
        assert loop.call(_tasks_besides_current()) == []
    finally:
        loop.close()
