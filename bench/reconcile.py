"""Reconcile on a clean cluster (issue #4 targets): wall time at 50 and at 500 consumers, Kubernetes API
requests per consumer (target <= 1), chain requests in total, and the 500/50 time ratio (target <= 10)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.report import Row
from bench.scenarios import large_scenario
from tests.e2e.harness import World
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput, ReconcileReport


async def _chain_requests(world: World) -> int:
    async with world.http.get(f"{world.manifest.chain_rpc_url}/devnet/state") as resp:
        faults = (await resp.json())["faults"]
    return sum(int(surface.get("served_total", 0)) for surface in faults.values())


async def _reconcile_once(tmp: Path, consumers: int) -> tuple[float, float, int]:
    scenario = large_scenario(validators=300, consumers=consumers)
    async with World(tmp, scenario, kube_step=0.05) as world:
        cluster = scenario.clusters[0].id
        # A long registry period: only the reconcile's own reads are counted.
        await world.start_worker(cluster, PEERSYNC_REGISTRY_REFRESH="3600s")
        await world.registry_ready(validators=300, cluster_id=cluster)
        kube = world.kube(cluster)
        kube_before, chain_before = kube.requests_served, await _chain_requests(world)
        t0 = time.perf_counter()
        report: ReconcileReport = await world.client.execute_workflow(
            ReconcileWorkflow.run,
            ReconcileInput(dry_run=True),
            id=f"bench-reconcile-{consumers}",
            task_queue=f"peersync-{cluster}",
        )
        elapsed = time.perf_counter() - t0
        if len(report.clean) != consumers:
            raise RuntimeError(f"expected {consumers} clean consumers, got {report.model_dump()}")
        per_consumer = (kube.requests_served - kube_before) / consumers
        return elapsed, per_consumer, await _chain_requests(world) - chain_before


async def run() -> list[Row]:
    rows: list[Row] = []
    times = {}
    for consumers in (50, 500):
        with tempfile.TemporaryDirectory() as tmp:
            elapsed, per_consumer, chain = await _reconcile_once(Path(tmp), consumers)
        times[consumers] = elapsed
        rows += [
            Row(
                f"reconcile, clean cluster of {consumers} consumers: wall time", elapsed, "s", "(info)", True
            ),
            Row(
                f"reconcile, {consumers} consumers: kube requests per consumer",
                per_consumer,
                "",
                "<= 1",
                per_consumer <= 1,
            ),
            Row(f"reconcile, {consumers} consumers: chain requests in total", chain, "", "(info)", True),
        ]
    ratio = times[500] / times[50]
    rows.append(Row("reconcile: 500 / 50 consumers time ratio", ratio, "x", "<= 10", ratio <= 10))
    return rows
