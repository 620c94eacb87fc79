"""Reconcile on a clean cluster (issue #4 targets): wall time at 50 and at 500 consumers, Kubernetes API
requests per consumer (target <= 1; one GET of each ConfigMap, plus one namespace list per reconcile), chain
requests in total, and the 500/50 time ratio (target <= 10)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.report import Row
from bench.scenarios import large_scenario
from devnet.testbed import World
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput, ReconcileReport


async def _chain_requests(world: World) -> int:
    async with world.http.get(f"{world.manifest.chain_rpc_url}/devnet/state") as resp:
        faults = (await resp.json())["faults"]
    return sum(int(surface.get("served_total", 0)) for surface in faults.values())


async def _reconcile_once(tmp: Path, consumers: int) -> tuple[float, int, int]:
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
        return elapsed, kube.requests_served - kube_before, await _chain_requests(world) - chain_before


async def run() -> list[Row]:
    rows: list[Row] = []
    times, kube_totals = {}, {}
    for consumers in (50, 500):
        with tempfile.TemporaryDirectory() as tmp:
            elapsed, kube_total, chain = await _reconcile_once(Path(tmp), consumers)
        times[consumers], kube_totals[consumers] = elapsed, kube_total
        rows += [
            Row(
                f"reconcile, clean cluster of {consumers} consumers: wall time", elapsed, "s", "(info)", True
            ),
            Row(f"reconcile, {consumers} consumers: kube requests in total", kube_total, "", "(info)", True),
            Row(f"reconcile, {consumers} consumers: chain requests in total", chain, "", "(info)", True),
        ]
    # What each consumer adds: the namespace list is one request per reconcile, whatever the size.
    marginal = (kube_totals[500] - kube_totals[50]) / 450
    rows.append(
        Row(
            "reconcile: kube requests per consumer (marginal, 50 -> 500)", marginal, "", "<= 1", marginal <= 1
        )
    )
    ratio = times[500] / times[50]
    rows.append(Row("reconcile: 500 / 50 consumers time ratio", ratio, "x", "<= 10", ratio <= 10))
    return rows
