"""The endpoint-change pipeline (issue #3 and #4 targets), on the devnet with real worker and watcher processes.

- detection: block commit -> EndpointChangeWorkflow started, over 50 edits (target p99 <= 0.1 block at 1 s);
- one change affecting 2 consumers, near-instant emulated rollouts: chain block -> both rollouts complete,
  and the Temporal history events of the EndpointChangeWorkflow (target <= 10 + 10 * consumers: since issue
  #9 each consumer's wait for its sync carries a re-ask timer, started and cancelled, so no wait is endless);
- registry: history bytes added by a refresh that finds nothing new, at 300 validators (target <= 2 KB);
- burst: 20 validators move in one block over 10 consumers -> rollouts per consumer (target exactly 1) and
  convergence time, against a naive mode (one full sync and rollout per change) in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from activities.kube_ops import Kube, api_client
from bench.report import Row
from core.contracts import EndpointChangeResult
from core.ids import endpoint_change_id, registry_id
from devnet.scenario import (
    ClusterSpec,
    ConsumerSpec,
    NamespaceSpec,
    Scenario,
    ValidatorSpec,
    default_scenario,
)
from devnet.testbed import World, eventually, random_subnet
from workflows.registry import RegistryWorkflow


async def _registry_size(world: World, n: int) -> bool:
    code, out, _ = await world.peersync("registry", "--json")
    return code == 0 and out.count('"operator_address"') == n


async def one_change(tmp: Path, runs: int = 50) -> list[Row]:
    """With the watcher, as deployed: detection, then the whole change, per edit."""
    async with World(tmp, default_scenario(random_subnet()), kube_step=0.01) as world:  # 1 s blocks
        await world.start_worker()
        await world.start_watcher(PEERSYNC_REGISTRY_REFRESH="60s")
        await eventually(lambda: _registry_size(world, 4), what="registry")
        latencies, events, detections = [], [], []
        for i in range(runs):
            height = await world.edit_validator("bob", f"p2p={world.subnet}.{30 + i % 2}")
            wf_id = endpoint_change_id("alice", world.operator("bob"), height)
            await world.finished(wf_id, EndpointChangeResult, timeout=120)
            history = await world.handle(wf_id).fetch_history()
            events.append(len(history.events))
            committed = await world.block_time(height)
            detections.append(history.events[0].event_time.ToDatetime().timestamp() - committed)
            latencies.append(history.events[-1].event_time.ToDatetime().timestamp() - committed)
    p50 = statistics.median(latencies)
    target = 10 + 10 * 2
    q = statistics.quantiles([d * 1000 for d in detections], n=100)
    block_ms = world.scenario.block_time * 1000
    return [
        Row(
            f"detection: block commit -> EndpointChange started, p50 ({runs} edits)",
            q[49],
            "ms",
            "(info)",
            True,
        ),
        Row(
            "detection: p99, as a fraction of the block time",
            q[98] / block_ms,
            "blocks",
            "<= 0.1",
            q[98] / block_ms <= 0.1,
        ),
        Row(
            "one change, 2 consumers: block -> both rollouts complete, p50", p50 * 1000, "ms", "(info)", True
        ),
        Row("one change, 2 consumers: same, max", max(latencies) * 1000, "ms", "(info)", True),
        Row(
            "history events per EndpointChange (2 consumers)",
            max(events),
            "events",
            f"<= {target}",
            max(events) <= target,
        ),
    ]


def wide_world(validators: int, consumers: int, movers: int) -> Scenario:
    """`validators` validators on 127.2.x.y; the first `movers`+1 are opted in to every consumer."""
    subnet = random_subnet()
    names = [f"v{i:03d}" for i in range(validators)]
    return Scenario(
        allow_cidrs=[f"{subnet}.0/24", "127.3.0.0/16"],
        block_time=0.5,
        validators=[
            ValidatorSpec(moniker=n, endpoint=f"{subnet}.{i + 1}") for i, n in enumerate(names[: movers + 1])
        ]
        + [
            ValidatorSpec(moniker=n, endpoint=f"127.3.{i // 250}.{i % 250 + 1}")
            for i, n in enumerate(names[movers + 1 :])
        ],
        consumers=[
            ConsumerSpec(chain_id=f"burst-{c}", opted_in=names[: movers + 1]) for c in range(consumers)
        ],
        clusters=[
            ClusterSpec(
                id="alice",
                validator=names[0],
                namespaces=[NamespaceSpec(consumer=f"burst-{c}") for c in range(consumers)],
            )
        ],
    )


async def registry_quiet_refresh(tmp: Path, validators: int = 300, refreshes: int = 10) -> list[Row]:
    async with World(tmp, wide_world(validators, 1, 1), kube_step=0.05) as world:
        await world.start_worker()
        await eventually(lambda: _registry_size(world, validators), timeout=60, what="registry")
        handle = world.handle(registry_id("alice"))
        start = await handle.query(RegistryWorkflow.stats)
        before = await handle.describe()

        async def quiet_refreshes_done() -> bool:
            return (await handle.query(RegistryWorkflow.stats)).refreshes >= start.refreshes + refreshes

        await eventually(quiet_refreshes_done, timeout=60, what="quiet refreshes")
        after = await handle.describe()
        refreshes = (await handle.query(RegistryWorkflow.stats)).refreshes - start.refreshes
    info0, info1 = (
        before.raw_description.workflow_execution_info,
        after.raw_description.workflow_execution_info,
    )
    per_refresh = (info1.history_size_bytes - info0.history_size_bytes) / refreshes
    events = (info1.history_length - info0.history_length) / refreshes
    return [
        Row(
            f"registry: history bytes per quiet refresh ({validators} validators)",
            per_refresh,
            "B",
            "<= 2048",
            per_refresh <= 2048,
        ),
        Row("registry: history events per quiet refresh", events, "events", "(info)", True),
    ]


async def burst(tmp: Path, movers: int = 20, consumers: int = 10) -> list[Row]:
    # Rollouts take ~0.4 s (4 controller steps), so restarts cost time as they do in a real cluster.
    async with World(tmp, wide_world(movers + 1, consumers, movers), kube_step=0.1) as world:
        await world.start_worker()
        await eventually(lambda: _registry_size(world, movers + 1), timeout=60, what="registry")
        namespaces = [f"alice-burst-{c}" for c in range(consumers)]
        before = {ns: world.generation(ns) for ns in namespaces}
        await world.admin("faults", {"pause_blocks": True})
        for i in range(1, movers + 1):
            await world.admin(
                "edit_validator", {"validator": f"v{i:03d}", "details": f"p2p={world.subnet}.{100 + i}"}
            )
        t0 = time.monotonic()
        await world.admin("faults", {"pause_blocks": False})

        async def converged() -> bool:
            return all(
                all(f"@{world.subnet}.{100 + i}:" in world.configmap_text(ns) for i in range(1, movers + 1))
                and world.workload(ns)["status"].get("updatedReplicas")
                == world.workload(ns)["spec"]["replicas"]
                and world.generation(ns) > before[ns]
                for ns in namespaces
            )

        await eventually(converged, timeout=180, what="burst convergence")
        elapsed = time.monotonic() - t0
        # Let any further (coalesced) syncs finish before counting rollouts.
        await asyncio.sleep(3)
        rollouts = [world.generation(ns) - before[ns] for ns in namespaces]
        naive_s, naive_rollouts = await _naive(world, namespaces, movers)
    return [
        Row(
            f"burst: {movers} moves in one block over {consumers} consumers, max rollouts per consumer",
            max(rollouts),
            "",
            "== 1",
            max(rollouts) == 1,
        ),
        Row("burst: convergence time (peersync)", elapsed, "s", "(info)", True),
        Row(
            "burst: naive mode (one sync + rollout per change), rollouts in all",
            naive_rollouts,
            "",
            "(info)",
            True,
        ),
        Row("burst: naive mode convergence time", naive_s, "s", "(info)", True),
        Row("burst: naive / peersync time ratio", naive_s / elapsed, "x", "(info)", True),
    ]


async def _naive(world: World, namespaces: list[str], movers: int) -> tuple[float, int]:
    """The design peersync replaces: every change rewrites and rolls every affected consumer at once."""
    kube = Kube(api_client(world.cluster().kubeconfig), "alice")
    t0 = time.monotonic()
    count = 0
    for i in range(1, movers + 1):
        for ns in namespaces:
            applied = await asyncio.to_thread(kube.read_applied, ns)
            await asyncio.to_thread(kube.write_peers, ns, applied.peers)
            stamp = f"naive-{i}"
            await asyncio.to_thread(kube.restart, ns, f"{applied.peers_hash[:8]}{i:08d}", stamp)
            await asyncio.to_thread(kube.wait_rollout, ns, 60, lambda _v: None)
            count += 1
    return time.monotonic() - t0, count


async def run() -> list[Row]:
    rows: list[Row] = []
    for bench in (one_change, registry_quiet_refresh, burst):
        with tempfile.TemporaryDirectory() as tmp:
            rows += await bench(Path(tmp))
    return rows
