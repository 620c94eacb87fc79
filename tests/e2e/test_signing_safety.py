"""Never two signing pods (issue 9, item 1) on the devnet: alice-consumer-3 is a Deployment with Kubernetes'
default RollingUpdate strategy and a local signer, so peersync refuses to restart it - in the dry runs before
anything happens, in the change's row, in the reconcile row and in a metric - and its pods never overlap,
while a `kubectl rollout restart`-style patch of the same Deployment runs two pods at once."""

from __future__ import annotations

import aiohttp

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from devnet.kube import manifests
from devnet.ports import free_port
from devnet.testbed import World, eventually
from tests.e2e.control_kit import peersync_ok
from tests.e2e.test_reconcile import reconcile, table_rows

C1, C3 = "alice-consumer-1", "alice-consumer-3"
WHY = "deployment/consumer-3 uses strategy RollingUpdate (maxSurge 25%)"


async def max_running(world: World, namespace: str) -> int:
    """The most pods of the namespace's workload ever Running at once (the kube emulator's /devnet/overlap)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{world.cluster().kube_url}/devnet/overlap") as resp:
            body = await resp.json()
    return max((w["max_running"] for w in body["workloads"] if w["namespace"] == namespace), default=0)


async def test_a_rolling_update_deployment_is_refused_everywhere_and_never_runs_two_pods(
    world: World,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    await world.start_worker(PEERSYNC_METRICS_ADDRESS=url.removeprefix("http://"))
    await world.registry_ready()
    new = f"{world.subnet}.24"
    generation = world.generation(C3)

    # Before anything happens: the dry run of a move of dave (consumer-1 and consumer-3) shows the refusal.
    plan = await peersync_ok(
        world, "update", "--validator", "dave", "--endpoint", new, "--dry-run", COLUMNS="400"
    )
    [line] = [row for row in plan.splitlines() if C3 in row]
    assert "refused: " + WHY in line, plan
    assert "refused" not in next(row for row in plan.splitlines() if C1 in row), plan

    height = await world.edit_validator("dave", f"p2p={new}")
    wf_id = endpoint_change_id("alice", world.operator("dave"), height)
    result: EndpointChangeResult = await world.finished(wf_id, EndpointChangeResult, timeout=60)
    by_ns = {c.consumer.namespace: c for c in result.consumers}
    assert result.phase == Phase.FAILED
    assert WHY in (by_ns[C3].error or "") and not by_ns[C3].restarted, by_ns[C3]
    assert by_ns[C1].error is None and by_ns[C1].restarted  # a remote signer: restarted
    assert world.generation(C3) == generation  # the pod template was never patched
    row = next(c for c in (await world.progress(wf_id)).consumers if c.namespace == C3)
    assert row.state == "failed" and WHY in (row.detail or ""), row
    status = await peersync_ok(world, "status", wf_id, COLUMNS="400")
    assert WHY in status, status

    # The reconcile row: the dry run says the repair's restart would be refused; the repair fails with it.
    dry = await reconcile(world, "--dry-run")
    [drifted] = [r for r in dry.drifted if r.namespace == C3]
    assert "restart refused: " + WHY in (drifted.reason or ""), drifted
    code, out, err = await world.peersync("reconcile", COLUMNS="250")
    rows = {r[0]: r for r in table_rows(out)}
    assert code != 0, (out, err)  # a failed repair: the command says so in its exit code
    assert rows[C3][1] == "failed" and "two signers with one key" in rows[C3][2], rows
    assert "repaired" != rows[C3][1]
    assert world.generation(C3) == generation

    async def counted() -> float | None:
        samples = await world.scrape(url)
        # Activity metrics carry the SDK's own labels (activity_type, task_queue, ...) beside chain_id.
        found = [
            v
            for k, v in samples.items()
            if k.startswith("peersync_restarts_refused_total{") and 'chain_id="consumer-3"' in k
        ]
        return sum(found) if found else None

    assert await eventually(counted, what="the refusal counted") >= 2  # the change and the repair
    assert await max_running(world, C3) == 1  # no two pods of the signing workload ever ran at once

    # What the guard prevents: `kubectl rollout restart` of the same Deployment runs two signers at once.
    # (the emulator runs on this test's event loop: a blocking client call here would never be answered)
    deployment = world.workload(C3)
    deployment["spec"]["template"]["metadata"]["annotations"][manifests.RESTARTED_AT] = "2026-11-25T18:43:42Z"
    world.kube().apply(deployment)
    await eventually(lambda: _at_least(world, C3, 2), what="the new pod running beside the old one")


async def _at_least(world: World, namespace: str, count: int) -> bool:
    return await max_running(world, namespace) >= count
