"""The same measures on both testbeds, side by side in one run (issue 10): the emulated one and the real one
(a real ICS provider, real cometbft consumer nodes, a real kube-apiserver with its controllers and kwok).

- detection: the block's commit (its precommit's timestamp, from `/commit`) -> EndpointChangeWorkflow
  started by the watcher;
- restart: the block's commit -> both consumers rolled out (the change's last history event);
- live: the block's commit -> the moved peer connected at its new address in `net_info` on every node of
  alice's two affected consumers (strategy `live`: `dial_peers`, no restart). bob's moved nodes dial nobody
  themselves here, so the connection is peersync's doing.

Each testbed gets its own worlds and the same edits, one at a time (bob moves back and forth). The real
testbed's pods have a 1 s grace period (each Recreate rollout waits it out); the emulated rollouts take a
few controller ticks. Rows are informational: they say what the emulator hides, not a target it must meet.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.report import Row
from core.contracts import EndpointChangeResult
from core.ids import endpoint_change_id
from core.upstream import upstream_node_id, upstream_ports
from devnet.mission import listens_at
from devnet.real.binaries import MANIFEST, NOT_BUILT
from devnet.real.world import RealWorld, make_world
from devnet.scenario import Scenario, default_scenario
from devnet.testbed import World, eventually, random_subnet, rfc3339_seconds

EDITS = 5
TESTBEDS = ("emulated", "real")
LIVE = ("alice-consumer-1", "alice-consumer-2")


def live_scenario(subnet: str) -> Scenario:
    scenario = default_scenario(subnet, block_time=1.0)
    [cluster] = scenario.clusters
    assert cluster.namespaces is not None
    for i in range(2):
        cluster.namespaces[i] = cluster.namespaces[i].model_copy(update={"strategy": "live"})
    return scenario


async def commit_time(world: World, height: int) -> float:
    """When the block was committed: the latest precommit timestamp of its commit (the header's time is
    when it was proposed); on the emulator, which serves no /commit, the header time: its commit time."""
    async with world.http.get(
        f"{world.manifest.chain_rpc_url}/commit", params={"height": str(height)}
    ) as resp:
        body = await resp.json(content_type=None) if resp.status == 200 else {}
    sigs = (body.get("result") or {}).get("signed_header", {}).get("commit", {}).get("signatures") or []
    times = [rfc3339_seconds(s["timestamp"]) for s in sigs if s.get("timestamp", "").startswith("2")]
    return max(times) if times else await world.block_time(height)


async def _move(world: World, i: int) -> tuple[int, str]:
    host = f"{world.subnet}.{30 + i % 2}"
    return await world.edit_validator("bob", f"p2p={host}"), host


async def restarts(testbed: str, tmp: Path) -> tuple[list[float], list[float]]:
    detections, rollouts = [], []
    async with make_world(
        testbed, tmp, default_scenario(random_subnet(), block_time=1.0), kube_step=0.01
    ) as world:
        await world.start_worker(PEERSYNC_REGISTRY_REFRESH="60s")
        await world.watcher_connected(await world.start_watcher(PEERSYNC_REGISTRY_REFRESH="60s"))
        await world.registry_ready()
        for i in range(EDITS):
            height, _ = await _move(world, i)
            wf_id = endpoint_change_id("alice", world.operator("bob"), height)
            await world.finished(wf_id, EndpointChangeResult, timeout=180)
            history = await world.handle(wf_id).fetch_history()
            committed = await commit_time(world, height)
            detections.append(history.events[0].event_time.ToDatetime().timestamp() - committed)
            rollouts.append(history.events[-1].event_time.ToDatetime().timestamp() - committed)
    return detections, rollouts


async def _connected(world: World, chain_id: str, host: str) -> bool:
    """alice's node of `chain_id` (its pods' IP, the validator's host) lists bob at `host`."""
    url = f"http://{world.subnet}.1:{upstream_ports(chain_id).rpc}/net_info"
    try:
        async with world.http.get(url) as resp:
            peers = (await resp.json(content_type=None))["result"]["peers"]
    except Exception:
        return False
    bob = upstream_node_id("bob", chain_id)
    return any(p["node_info"]["id"] == bob and listens_at(p, host) for p in peers)


def mover_dials_nobody(world: World) -> None:
    """bob's nodes keep no persistent peers, so that after a move nothing but alice's `dial_peers` (peersync's
    `live` strategy) connects them: a moved node that redials its own peers would connect first and the row
    would time bob's restart, not peersync."""
    if isinstance(world, RealWorld):
        nodes = world.real.nodes
        assert nodes is not None
        for (moniker, _), node in nodes.nodes.items():
            if moniker == "bob":
                nodes._configure(node, peers=[])  # read at the node's next start: its move
        return
    assert world.devnet.chain is not None
    for node in world.devnet.chain.nodes.nodes.values():
        if node.moniker == "bob":
            node.persistent_peers = []


async def live(testbed: str, tmp: Path) -> list[float]:
    connected = []
    async with make_world(testbed, tmp, live_scenario(random_subnet()), kube_step=0.01) as world:
        mover_dials_nobody(world)
        await world.start_worker(PEERSYNC_REGISTRY_REFRESH="60s")
        await world.watcher_connected(await world.start_watcher(PEERSYNC_REGISTRY_REFRESH="60s"))
        await world.registry_ready()
        for i in range(EDITS):
            height, host = await _move(world, i)

            async def everywhere(host: str = host) -> bool:
                return all([await _connected(world, c, host) for c in ("consumer-1", "consumer-2")])

            await eventually(everywhere, 120, f"bob connected at {host} on alice's live nodes")
            seen = time.time()
            connected.append(seen - await commit_time(world, height))
            await world.finished(
                endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult
            )
    return connected


def _p50(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def run() -> list[Row]:
    if not MANIFEST.exists():
        print(f"testbeds: SKIPPED, {NOT_BUILT}")
        return [Row(f"NOT RUN: {NOT_BUILT}", 0, "", "(info)", False)]
    rows = []
    measured: dict[str, dict[str, list[float]]] = {}
    for testbed in TESTBEDS:
        with tempfile.TemporaryDirectory() as tmp:
            detections, rollouts = await restarts(testbed, Path(tmp) / "restart")
            measured[testbed] = {"detection": detections, "rollout": rollouts}
            measured[testbed]["live"] = await live(testbed, Path(tmp) / "live")
    labels = {
        "detection": "detection: block commit -> EndpointChange started",
        "rollout": "restart: block commit -> both consumers rolled out",
        "live": "live: block commit -> moved peer connected in net_info on every node",
    }
    for key, label in labels.items():
        for testbed in TESTBEDS:
            values = measured[testbed][key]
            rows.append(Row(f"{label}, p50 ({EDITS} edits), {testbed}", _p50(values), "ms", "(info)", True))
            rows.append(Row(f"{label}, max, {testbed}", max(values) * 1000, "ms", "(info)", True))
    return rows


if __name__ == "__main__":
    for row in asyncio.run(run()):
        print(row)
