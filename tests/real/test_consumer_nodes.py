"""Real CometBFT consumer nodes (issue 10, item 4): upstream-derived node keys, real p2p connections, the
product's `live` dial against real `dial_peers`/`net_info`, and a validator moving its endpoint.

One network for the module (tests run in file order and build on each other's state):
consumer-1: alice (first: > 2/3 of the power), bob, carol connected to each other, and dave, whom nobody
lists yet (the "new peer" of the live strategy); consumer-2: alice, bob and carol, carol with `unsafe` off.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from functools import partial
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
import pytest_asyncio

from activities.catch_up import wait_caught_up
from activities.live_peers import RpcDisabledError, dial_and_verify
from core.upstream import upstream_node_id, upstream_ports
from devnet.real.nodes import NodeSpec, RealConsumerNodes
from devnet.testbed import eventually, random_subnet

pytestmark = [pytest.mark.real, pytest.mark.asyncio(loop_scope="module")]

C1, C2 = "consumer-1", "consumer-2"
TRIO = ["alice", "bob", "carol"]
T = TypeVar("T")


@pytest.fixture(scope="module")
def subnet() -> str:
    return random_subnet()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def nodes(tmp_path_factory: pytest.TempPathFactory, subnet: str) -> AsyncIterator[RealConsumerNodes]:
    host = {m: f"{subnet}.{i}" for i, m in enumerate([*TRIO, "dave"], start=1)}
    specs = [
        NodeSpec(moniker=m, chain_id=C1, host=host[m], persistent_peers=[o for o in TRIO if o != m])
        for m in TRIO
    ]
    specs.append(NodeSpec(moniker="dave", chain_id=C1, host=host["dave"], persistent_peers=[]))
    specs += [NodeSpec(moniker=m, chain_id=C2, host=host[m], unsafe_rpc=m != "carol") for m in TRIO]
    async with RealConsumerNodes(Path(tmp_path_factory.mktemp("real-nodes")), specs) as running:
        print(f"{len(specs)} real cometbft nodes up in {running.startup_seconds:.1f} s on {subnet}.0/24")
        yield running


def holds(value: T) -> Awaitable[T]:
    """A plain value as the awaitable `eventually` polls (for conditions read from a log file)."""
    return asyncio.sleep(0, value)


def peers_of(nodes: RealConsumerNodes, chain_id: str, monikers: list[str]) -> list[str]:
    return [nodes.node(m, chain_id).peer for m in monikers]


async def connected(nodes: RealConsumerNodes, moniker: str, chain_id: str, others: list[str]) -> bool:
    want = {nodes.node(o, chain_id).node_id for o in others}
    return want <= await nodes.peer_ids(moniker, chain_id)


async def test_node_ids_are_the_upstream_derivation(nodes: RealConsumerNodes) -> None:
    for (moniker, chain_id), node in nodes.nodes.items():
        shown = await nodes.show_node_id(moniker, chain_id)
        status = await nodes.status(moniker, chain_id)
        assert shown == status["node_info"]["id"] == upstream_node_id(moniker, chain_id) == node.node_id
        ports = upstream_ports(chain_id)
        assert status["node_info"]["network"] == chain_id
        assert status["node_info"]["listen_addr"] == f"tcp://{node.host}:{ports.p2p}"
        assert status["node_info"]["other"]["rpc_address"] == f"tcp://{node.host}:{ports.rpc}"
    # Two consumers on one host: different upstream ports, both served.
    assert nodes.node("alice", C1).p2p_port != nodes.node("alice", C2).p2p_port


async def test_nodes_connect_to_their_persistent_peers(nodes: RealConsumerNodes) -> None:
    for chain_id in (C1, C2):
        for moniker in TRIO:
            others = [o for o in TRIO if o != moniker]
            await eventually(
                partial(connected, nodes, moniker, chain_id, others), 20, f"{moniker}/{chain_id}"
            )
    assert await nodes.peer_ids("dave", C1) == set()  # nobody lists dave and dave lists nobody
    # Block sync needs a peer: an isolated node says catching_up at height 0 for as long as it has none.
    sync = (await nodes.status("dave", C1))["sync_info"]
    assert (sync["catching_up"], sync["latest_block_height"]) == (True, "0"), sync
    entries = [p for m in TRIO for p in (await nodes.rpc(m, C1, "net_info"))["result"]["peers"]]
    inbound = [p for p in entries if not p["is_outbound"]]
    outbound = [p for p in entries if p["is_outbound"]]
    assert inbound and outbound  # each connection is outbound at one end and inbound at the other
    # Loopback: the kernel picks source address 127.0.0.1 for every connection, so an inbound peer's
    # remote_ip is 127.0.0.1, not its endpoint (hence allow_duplicate_ip); an outbound one is the endpoint.
    assert all(p["remote_ip"] == "127.0.0.1" for p in inbound), inbound
    assert all(p["remote_ip"] == p["node_info"]["listen_addr"].split("//")[1].split(":")[0] for p in outbound)
    listeners = (await nodes.rpc("alice", C1, "net_info"))["result"]["listeners"]
    assert listeners == ["Listener(@)"]  # no external_address set: CometBFT prints an empty one


async def test_live_dial_connects_the_new_peer_without_a_restart(nodes: RealConsumerNodes) -> None:
    """As the product's dial_peers activity does it: per validator's namespace, its node's RPC and the
    consumer's whole list (the other validators, dave now included)."""
    pids = {key: child.pid for key, child in nodes.processes.items()}
    began = time.monotonic()
    reports = await asyncio.gather(
        *(
            dial_and_verify(
                [nodes.node(m, C1).rpc_url], peers_of(nodes, C1, [o for o in [*TRIO, "dave"] if o != m]), 20
            )
            for m in TRIO
        )
    )
    took = time.monotonic() - began
    assert all(not r.not_connected and r.connected == 3 for [r] in reports), reports
    assert await connected(nodes, "dave", C1, TRIO)
    assert {key: child.pid for key, child in nodes.processes.items()} == pids  # nothing restarted
    print(f"dial_and_verify: dave in every net_info after {took:.1f} s")
    # Persistent: dave's own config lists nobody, so only the others' redial can bring him back.
    await nodes.stop_node("dave", C1)
    await nodes.start_node("dave", C1)
    began = time.monotonic()
    for moniker in TRIO:
        await eventually(partial(connected, nodes, moniker, C1, ["dave"]), 30, f"{moniker} to redial dave")
    print(f"dave redialled by all three {time.monotonic() - began:.1f} s after his restart")


async def test_dial_errors_are_cometbft_json_rpc_bodies(nodes: RealConsumerNodes) -> None:
    carol, alice = nodes.node("carol", C2), nodes.node("alice", C2)
    async with aiohttp.ClientSession() as http:

        async def get(url: str, peers: str) -> tuple[int, str, str]:
            async with http.get(f"{url}/dial_peers", params={"peers": peers}) as resp:
                return resp.status, resp.content_type, await resp.text()

        # unsafe off: the route is not registered at all.
        assert await get(carol.rpc_url, json.dumps([alice.peer])) == (
            404,
            "text/plain",
            "404 page not found\n",
        )
        bodies = {
            "no id": await get(alice.rpc_url, json.dumps(["127.0.0.1:26656"])),
            "short id": await get(alice.rpc_url, json.dumps(["0123@127.0.0.1:1"])),
            "empty": await get(alice.rpc_url, "[]"),
            "not json": await get(alice.rpc_url, "nonsense"),
        }
    for what, body in bodies.items():
        print(f"dial_peers {what}: {body}")
    assert bodies["no id"] == (
        500, "application/json",
        '{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"Internal error",'
        '"data":"address (127.0.0.1:26656) does not contain ID"}}',
    )  # fmt: skip
    assert json.loads(bodies["short id"][2])["error"]["data"] == (
        "invalid address (0123@127.0.0.1:1): invalid hex length - got 2, expected 20"
    )
    assert json.loads(bodies["empty"][2])["error"]["data"] == "no peers provided"
    assert json.loads(bodies["not json"][2])["error"]["code"] == -32602
    with pytest.raises(RpcDisabledError):  # the product tells "unsafe is off" apart from a refused dial
        await dial_and_verify([carol.rpc_url], [alice.peer], verify_seconds=1)


async def test_a_wrong_node_id_is_accepted_but_never_connects(nodes: RealConsumerNodes) -> None:
    """The call says 200 (the id is only checked when connecting); the dials fail in the node's log."""
    alice, bob = nodes.node("alice", C2), nodes.node("bob", C2)
    address = f"{bob.host}:{bob.p2p_port}"
    impostor = f"{upstream_node_id('mallory', C2)}@{address}"
    upper = f"{bob.node_id.upper()}@{address}"  # valid hex, but ids compare as strings
    async with aiohttp.ClientSession() as http:
        params = {"peers": json.dumps([impostor, upper])}
        async with http.get(f"{alice.rpc_url}/dial_peers", params=params) as resp:
            assert resp.status == 200, await resp.text()

    def refused() -> list[str]:
        after_call = nodes.log("alice", C2).split(impostor, 1)[-1]
        return re.findall(r'Error dialing peer +module=p2p err="([^"]+)"', after_call)

    failed = await eventually(lambda: holds(len(refused()) >= 2 and refused()), 10, "both dials to fail")
    print("dial errors in the log:", failed)
    # To an address alice is already connected to, the transport refuses the connection before any handshake
    # ("duplicate CONN<host:port>"); to a fresh address the handshake does ("auth failure: conn.ID (...)
    # dialed ID (...) mismatch").
    assert all(e.startswith(("duplicate CONN<", "auth failure: conn.ID")) for e in failed), failed
    ids = await nodes.peer_ids("alice", C2)
    assert upstream_node_id("mallory", C2) not in ids and bob.node_id in ids  # the real bob stays connected


def reconnects(nodes: RealConsumerNodes, moniker: str, chain_id: str, peer: str) -> int:
    """How often the node's Switch started its reconnect loop for `peer` (id@host:port) in this run."""
    return len(
        re.findall(rf"Reconnecting to peer +module=p2p addr={re.escape(peer)}", nodes.log(moniker, chain_id))
    )


def drops(nodes: RealConsumerNodes, moniker: str, chain_id: str, node_id: str) -> int:
    return len(re.findall(rf"Stopping peer for error .* {node_id} (in|out)", nodes.log(moniker, chain_id)))


async def test_persistent_dial_replaces_the_persistent_list(nodes: RealConsumerNodes) -> None:
    """dial_peers(persistent=true) REPLACES the Switch's persistent list, but a connected peer keeps the
    persistent flag it was connected with: carol, dropped from alice's list, is redialled once more after
    her first restart, and no longer after the second. bob, still listed, is redialled every time.
    (Every drop is logged "Stopping peer for error"; a redial starts with "Reconnecting to peer".)"""
    alice, bob, carol = (nodes.node(m, C2) for m in TRIO)
    async with aiohttp.ClientSession() as http:
        params = {"persistent": "true", "peers": json.dumps([bob.peer])}
        async with http.get(f"{alice.rpc_url}/dial_peers", params=params) as resp:
            assert resp.status == 200, await resp.text()
    # Nothing is disconnected by the call (the emulator drops carol here at once).
    assert carol.node_id in await nodes.peer_ids("alice", C2)

    async def restart_and_count(moniker: str) -> int:
        peer, node_id = nodes.node(moniker, C2).peer, nodes.node(moniker, C2).node_id
        before, dropped = reconnects(nodes, "alice", C2, peer), drops(nodes, "alice", C2, node_id)
        await nodes.stop_node(moniker, C2)
        await eventually(lambda: holds(drops(nodes, "alice", C2, node_id) > dropped), 10, "the drop")
        # The reconnect goroutine is started right after the drop is logged: give it a moment to log.
        await asyncio.sleep(0.5)
        after = reconnects(nodes, "alice", C2, peer) - before
        await nodes.start_node(moniker, C2)
        await eventually(lambda: connected(nodes, "alice", C2, [moniker]), 20, f"{moniker} back at alice")
        return after

    # A stopping node can still accept a redial in its last moments, so one stop may start the reconnect
    # loop more than once: "redialled" is >= 1.
    assert await restart_and_count("carol") >= 1  # flagged persistent when connected before the dial
    assert await restart_and_count("carol") == 0  # reconnected after the dial: not persistent any more
    assert await restart_and_count("bob") >= 1  # in the new list
    # carol still came back both times: her own config.toml lists alice, so she dials alice herself.
    assert carol.node_id in await nodes.peer_ids("alice", C2)


async def test_move_restarts_the_nodes_on_the_new_address(nodes: RealConsumerNodes, subnet: str) -> None:
    old = nodes.node("bob", C1)
    height_before = int((await nodes.status("bob", C1))["sync_info"]["latest_block_height"])
    moved = await nodes.move("bob", f"{subnet}.9")
    assert {n.chain_id for n in moved} == {C1, C2} and all(n.host == f"{subnet}.9" for n in moved)
    new = nodes.node("bob", C1)
    seen: list[str] = []
    verdict = await wait_caught_up(lambda: holds([new.rpc_url]), 1, time.time() + 30, seen.append)
    print("catch-up looks after the move:", seen[:3], "...", seen[-1])
    assert any("catching up" in look for look in seen), seen  # the real /status said catching_up: true
    assert verdict.done and verdict.height is not None and verdict.height > height_before
    # Reachable at the new address, gone from the old one; the others see bob again (he dials them).
    with socket.create_connection((new.host, new.p2p_port), timeout=2):
        pass
    with pytest.raises(OSError):
        socket.create_connection((old.host, old.p2p_port), timeout=2).close()
    await eventually(lambda: connected(nodes, "alice", C1, ["bob"]), 20, "bob back at alice")
    info = (await nodes.rpc("alice", C1, "net_info"))["result"]
    bob_entry = next(p for p in info["peers"] if p["node_info"]["id"] == new.node_id)
    assert bob_entry["node_info"]["listen_addr"] == f"tcp://{new.host}:{new.p2p_port}"
