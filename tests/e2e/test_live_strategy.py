"""peersync.io/strategy: `live` hands the running nodes their new peers with CometBFT's `dial_peers` (and
writes the ConfigMap for their next start) without restarting them; `live-then-restart` does both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from core.upstream import upstream_node_id, upstream_ports
from devnet.real.world import make_world
from devnet.scenario import Scenario
from devnet.testbed import World, default_world, eventually, random_subnet

C1 = "alice-consumer-1"

pytestmark = pytest.mark.both_testbeds


def world_with(strategy: str) -> Scenario:
    scenario = default_world(random_subnet())
    [cluster] = scenario.clusters
    assert cluster.namespaces is not None
    cluster.namespaces[0] = cluster.namespaces[0].model_copy(update={"strategy": strategy})
    return scenario


@pytest.fixture
async def live_world(tmp_path: Path, testbed: str) -> AsyncIterator[World]:
    async with make_world(testbed, tmp_path, world_with("live")) as w:
        yield w


@pytest.fixture
async def live_then_restart_world(tmp_path: Path, testbed: str) -> AsyncIterator[World]:
    async with make_world(testbed, tmp_path, world_with("live-then-restart")) as w:
        yield w


# The operator's sentry, added by hand; `dial_peers` REPLACES the node's persistent list, so it must be dialled too.
# On loopback, where nothing listens: the real testbed's node really dials it, and nothing here may dial off
# this machine.
SENTRY = "f00dbabef00dbabef00dbabef00dbabef00dbabe@127.1.0.99:26656"


def add_sentry_by_hand(world: World) -> None:
    kube = world.kube()
    cm = kube.get("ConfigMap", C1, "consumer-1-config")
    cm["data"]["config.toml"] = cm["data"]["config.toml"].replace(
        'persistent_peers = "', f'persistent_peers = "{SENTRY},', 1
    )
    kube.apply(cm)


async def node_persistent_peers(world: World) -> list[str]:
    """alice's consumer-1 node's in-memory persistent list, as the chain emulator reports it."""
    nodes = (await world.chain_state())["nodes"]
    [node] = [n for n in nodes if n["moniker"] == "alice" and n["chain_id"] == "consumer-1"]
    return list(node["persistent_peers"])


async def alices_node_peers(world: World) -> set[str]:
    """Node ids alice's consumer-1 node is connected to, from its own CometBFT RPC."""
    url = f"http://{world.subnet}.1:{upstream_ports('consumer-1').rpc}/net_info"
    async with world.http.get(url) as resp:
        body = await resp.json()
    return {p["node_info"]["id"] for p in body["result"]["peers"]}


async def bob_moves(world: World) -> tuple[str, EndpointChangeResult]:
    """bob moves on the chain; the change's workflow id and result."""
    await world.start_worker()
    await world.registry_ready()
    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    wf_id = endpoint_change_id("alice", world.operator("bob"), height)
    return wf_id, await world.finished(wf_id, EndpointChangeResult)


async def test_live_gives_the_nodes_their_peers_without_a_restart(live_world: World) -> None:
    world = live_world
    add_sentry_by_hand(world)
    generation = world.generation(C1)
    new = f"{world.subnet}.22"
    code, out, err = await world.peersync(
        "update", "--validator", "bob", "--endpoint", new, "--dry-run", "--json"
    )
    assert code == 0, err
    plan = {c["namespace"]: c for c in json.loads(out)["consumers"]}
    assert plan[C1]["live"] and not plan[C1]["restart"], plan[C1]  # the dry run says what will happen
    change, result = await bob_moves(world)

    assert result.phase == Phase.DONE
    [c1] = [c for c in result.consumers if c.consumer.namespace == C1]
    assert not c1.restarted and c1.live and "on 2 node(s)" in c1.live, c1  # both replicas' pods, one node
    assert world.generation(C1) == generation  # no restart: no missed blocks
    [row] = [c for c in (await world.progress(change)).consumers if c.namespace == C1]
    assert row.live == c1.live and row.detail == "peers written, dialled live (no restart)", row
    assert f"@{world.subnet}.22:" in world.configmap_text(C1)  # and the next start reads the new list
    bob = upstream_node_id("bob", "consumer-1")
    assert bob in await alices_node_peers(world)
    # The node keeps the operator's sentry: the dial handed it the whole list, not only peersync's entries.
    # (A real node shows its persistent list on no RPC; the emulated run checks it, the real one checks
    # that bob is connected, above.)
    if world.testbed == "emulated":
        running = await node_persistent_peers(world)
        assert SENTRY in running and any(p.startswith(f"{bob}@{new}:") for p in running), running
    assert f'persistent_peers = "{SENTRY},' in world.configmap_text(C1)

    code, out, err = await world.peersync("reconcile", "--dry-run", "--json")
    assert code == 0, err
    assert C1 in [row["namespace"] for row in json.loads(out)["clean"]]  # the dial is recorded as rolled

    # consumer-2 keeps the default strategy: restarted as always.
    [c2] = [c for c in result.consumers if c.consumer.namespace == "alice-consumer-2"]
    assert c2.restarted and not c2.live


async def test_live_then_restart_dials_then_restarts(live_then_restart_world: World) -> None:
    world = live_then_restart_world
    generation = world.generation(C1)
    _, result = await bob_moves(world)
    [c1] = [c for c in result.consumers if c.consumer.namespace == C1]
    assert c1.live and c1.restarted, c1
    assert world.generation(C1) == generation + 1
    assert upstream_node_id("bob", "consumer-1") in await eventually(
        lambda: alices_node_peers(world), what="alice's node to list bob"
    )


@pytest.mark.emulated_only(reason="turns the node's [rpc] unsafe off through the chain emulator's admin API")
async def test_live_on_a_node_without_the_unsafe_rpc_fails_at_once_and_says_why(live_world: World) -> None:
    """`[rpc] unsafe = false`: no retry can help, so the sync fails now, restarts nothing, and names the fix;
    the ConfigMap already holds the new list for the node's next start."""
    world = live_world
    await world.admin("node", {"validator": "alice", "consumer": "consumer-1", "unsafe_rpc": False})
    generation = world.generation(C1)
    _, result = await bob_moves(world)

    assert result.phase == Phase.FAILED
    [c1] = [c for c in result.consumers if c.consumer.namespace == C1]
    assert c1.error and "set [rpc] unsafe = true on the node, or use strategy restart" in c1.error, c1
    assert not c1.restarted and world.generation(C1) == generation
    assert f"@{world.subnet}.22:" in world.configmap_text(C1)
