"""Validator safety over a burst (issue #9 measures), on the devnet with a real worker process.

- two signers: the moments at which two pods of one single-replica signing workload ran at once (the kube
  emulator counts them, terminating pods included) while peersync applies a burst of moves (target 0), beside
  the seed's manual recipe (edit the ConfigMap, `kubectl rollout restart`) on the Kubernetes default
  RollingUpdate Deployments, in the same run;
- node-down time per consumer for the restart strategy: restart sent -> every node of the consumer caught up
  again (catch-up gating), read from each ConsumerSyncWorkflow's history. The emulated nodes catch up in
  1 s (the testbed's setting) and rollouts take a few controller steps: the figure is peersync's share and
  the gating's, not a real node's replay time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client as k8s
from temporalio.service import RPCError

from activities.kube_ops import Kube, api_client
from bench.pipeline import wide_world
from bench.report import Row
from core.ids import consumer_sync_id
from devnet.testbed import World, eventually

MOVERS, CONSUMERS = 10, 6


async def _overlaps(world: World) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{world.cluster().kube_url}/devnet/overlap") as resp,
    ):
        body: dict[str, Any] = await resp.json()
    return sum(int(w.get("overlaps", 0)) for w in body["workloads"])


async def _down_times(world: World, namespace: str) -> list[float]:
    """restart_workload started -> wait_caught_up completed, for each restart in the sync's history. A local
    restart (its marker) started with the workflow task it ran in."""
    history = await world.handle(consumer_sync_id("alice", namespace)).fetch_history()
    kinds: dict[int, str] = {}
    started: float | None = None
    task_started = 0.0
    out: list[float] = []
    for event in history.events:
        when = event.event_time.ToDatetime().timestamp()
        marker = event.marker_recorded_event_attributes
        if event.HasField("workflow_task_started_event_attributes"):
            task_started = when
        elif (
            event.HasField("marker_recorded_event_attributes") and marker.marker_name == "core_local_activity"
        ):
            if json.loads(marker.details["data"].payloads[0].data)["activity_type"] == "restart_workload":
                started = task_started
        elif event.HasField("activity_task_scheduled_event_attributes"):
            kinds[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.HasField("activity_task_started_event_attributes"):
            if (
                kinds.get(event.activity_task_started_event_attributes.scheduled_event_id)
                == "restart_workload"
            ):
                started = when
        elif event.HasField("activity_task_completed_event_attributes"):
            kind = kinds.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if kind in ("wait_caught_up", "wait_restarted") and started is not None:  # one activity since #11
                out.append(when - started)
                started = None
    return out


async def burst_safety(tmp: Path) -> list[Row]:
    async with World(tmp, wide_world(MOVERS + 1, CONSUMERS, MOVERS), kube_step=0.1) as world:
        await world.start_worker()
        names = [f"v{i:03d}" for i in range(MOVERS + 1)]

        async def registry_full() -> bool:
            code, out, _ = await world.peersync("registry", "--json")
            return code == 0 and out.count('"operator_address"') == len(names)

        await eventually(registry_full, timeout=60, what="registry")
        namespaces = [f"alice-burst-{c}" for c in range(CONSUMERS)]
        before = {ns: world.generation(ns) for ns in namespaces}
        overlaps0 = await _overlaps(world)
        await world.admin("faults", {"pause_blocks": True})
        for i in range(1, MOVERS + 1):
            await world.admin(
                "edit_validator", {"validator": names[i], "details": f"p2p={world.subnet}.{100 + i}"}
            )
        await world.admin("faults", {"pause_blocks": False})

        async def converged() -> bool:
            for ns in namespaces:
                try:
                    state = await world.consumer_sync(ns)
                except RPCError:  # its first sync has not been asked for yet
                    return False
                if world.generation(ns) == before[ns] or state.pending or not state.results:
                    return False
                if not all(
                    f"@{world.subnet}.{100 + i}:" in world.configmap_text(ns) for i in range(1, MOVERS + 1)
                ):
                    return False
                if any(r.restarted and not r.caught_up for r in state.results.values()):
                    return False
            return True

        await eventually(converged, timeout=300, what="burst convergence")
        peersync_overlaps = await _overlaps(world) - overlaps0
        downs = [t for ns in namespaces for t in await _down_times(world, ns)]
        manual_overlaps, manual_s = await _manual_recipe(world, namespaces)
    return [
        Row(
            f"two signers: moments with 2 pods of one signing workload Running, peersync burst "
            f"({MOVERS} moves over {CONSUMERS} consumers)",
            peersync_overlaps,
            "",
            "== 0",
            peersync_overlaps == 0,
        ),
        Row(
            "two signers: same, manual recipe (ConfigMap edit + rollout restart, default RollingUpdate)",
            manual_overlaps,
            "",
            "(baseline)",
            True,
        ),
        Row("manual recipe: time for the same consumers", manual_s, "s", "(info)", True),
        Row(
            "node down per restart (restart sent -> caught up), p50",
            statistics.median(downs),
            "s",
            "(info)",
            True,
        ),
        Row("node down per restart, max", max(downs), "s", "(info)", True),
        Row("restarts measured", len(downs), "", "(info)", True),
    ]


async def _manual_recipe(world: World, namespaces: list[str]) -> tuple[int, float]:
    """The seed's recipe on the Kubernetes default strategy: switch each Deployment back to RollingUpdate
    (no template change, so no rollout by itself), then edit and `kubectl rollout restart` each consumer."""
    apps = k8s.AppsV1Api(world.kube_api())
    kube = Kube(api_client(world.cluster().kubeconfig), "alice")
    default = {
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    }
    before = await _overlaps(world)
    t0 = time.monotonic()
    for ns in namespaces:
        name = world.workload(ns)["metadata"]["name"]
        await asyncio.to_thread(apps.patch_namespaced_deployment, name, ns, {"spec": default})
        applied = await asyncio.to_thread(kube.read_applied, ns)
        await asyncio.to_thread(kube.write_peers, ns, applied.peers)
        stamp = {
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": ns}}}}
        }
        await asyncio.to_thread(apps.patch_namespaced_deployment, name, ns, stamp)
        await asyncio.to_thread(kube.wait_rollout, ns, 60, lambda _v: None)

    # A RollingUpdate's new pod runs before the rollout reports done, so every overlap is counted by now.
    return await _overlaps(world) - before, time.monotonic() - t0


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        return await burst_safety(Path(tmp))
