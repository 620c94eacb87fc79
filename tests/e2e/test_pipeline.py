"""The mission on the devnet: a validator moves, every affected consumer gets the new peers and exactly one
rollout; the others are untouched."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.contracts import EndpointChangeResult, Phase
from core.ids import consumer_sync_id, endpoint_change_id
from devnet.real.binaries import kubectl_binary
from devnet.testbed import World

pytestmark = pytest.mark.both_testbeds


async def test_bob_moves_and_consumers_1_and_2_follow_with_one_rollout_each(world: World) -> None:
    await world.start_worker()
    before = {ns: world.generation(ns) for ns in ("alice-consumer-1", "alice-consumer-2", "alice-consumer-3")}
    untouched = world.configmap_text("alice-consumer-3")
    await world.registry_ready()

    new = f"{world.subnet}.22"
    height = await world.edit_validator("bob", f"p2p={new}")
    wf_id = endpoint_change_id("alice", world.operator("bob"), height)
    result = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE
    assert sorted(c.consumer.namespace for c in result.consumers) == ["alice-consumer-1", "alice-consumer-2"]
    assert all(c.restarted and c.changed for c in result.consumers)
    assert [s.chain_id for s in result.skipped] == ["consumer-3"]
    for ns in ("alice-consumer-1", "alice-consumer-2"):
        assert f"@{new}:" in world.configmap_text(ns)
        assert f"@{world.subnet}.2:" not in world.configmap_text(ns)
        assert world.generation(ns) == before[ns] + 1
    assert world.configmap_text("alice-consumer-3") == untouched
    assert world.generation("alice-consumer-3") == before["alice-consumer-3"]


async def _rollout_window(world: World, namespace: str) -> tuple[float, float]:
    """When the consumer's restart was scheduled and when its rollout wait completed (history times). A local
    restart (its marker) ran inside its workflow task: it started no earlier than that task."""
    history = await world.handle(consumer_sync_id("alice", namespace)).fetch_history()
    scheduled: dict[int, str] = {}
    start = end = None
    task_started = 0.0
    for event in history.events:
        if event.HasField("workflow_task_started_event_attributes"):
            task_started = event.event_time.ToDatetime().timestamp()
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and marker.marker_name == "core_local_activity":
            if json.loads(marker.details["data"].payloads[0].data)["activity_type"] == "restart_workload":
                start = task_started
        attrs = event.activity_task_scheduled_event_attributes
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = attrs.activity_type.name
            if attrs.activity_type.name == "restart_workload":
                start = event.event_time.ToDatetime().timestamp()
        if event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            # wait_restarted: the rollout wait and the catch-up after it, in one activity (issue 11 item 8).
            if scheduled.get(done.scheduled_event_id) in ("wait_rollout", "wait_restarted"):
                end = event.event_time.ToDatetime().timestamp()
    assert start is not None and end is not None, f"{namespace} did not roll out"
    return start, end


async def test_rollouts_never_overlap_with_one_slot(world: World) -> None:
    """PEERSYNC_MAX_PARALLEL_ROLLOUTS=1: consumer-1 and consumer-2 are synced together but roll one at a time."""
    world.kube().step_seconds = 0.3  # slow enough that overlapping rollouts would show
    await world.start_worker(PEERSYNC_MAX_PARALLEL_ROLLOUTS="1")
    await world.registry_ready()
    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    await world.finished(endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult)
    a = await _rollout_window(world, "alice-consumer-1")
    b = await _rollout_window(world, "alice-consumer-2")
    first, second = sorted([a, b])
    assert first[1] <= second[0], f"rollouts overlapped: {a} {b}"


async def test_a_namespace_with_a_bad_annotation_is_skipped_once_with_its_reason(world: World) -> None:
    """Its chain is run here, only not usably: one skipped row that says why, not also "not run here"."""
    proc = await asyncio.create_subprocess_exec(
        kubectl_binary() or "kubectl", "--kubeconfig", str(world.cluster().kubeconfig), "annotate", "namespace",
        "alice-consumer-2", "peersync.io/peers-format=yaml", "--overwrite", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    await world.start_worker()
    await world.registry_ready()
    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    result = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult
    )

    assert [c.consumer.namespace for c in result.consumers] == ["alice-consumer-1"]
    reasons = {s.chain_id: s.reason for s in result.skipped}
    assert reasons.keys() == {"consumer-2", "consumer-3"}, result.skipped
    assert (
        reasons["consumer-2"].startswith("namespace alice-consumer-2: ") and "yaml" in reasons["consumer-2"]
    )
