"""Faults on the devnet: a stalled rollout, a storm of 409s, a worker SIGKILLed mid-rollout and a Temporal
server restarted mid-workflow. Each ends with the ConfigMap right, the workload rolled exactly once per
consumer that needed it, and nothing retrying forever.

bob (opted in to consumer-1 and -2, not -3) moves in every test; consumer-1's rollout is held with a kube
`stall` fault where a test needs a rollout in flight.
"""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowExecutionStatus

from activities.rollout_status import deployment_verdict
from core.contracts import EndpointChangeResult, Phase, SyncResult
from core.ids import endpoint_change_id
from devnet.testbed import KubeLog, World, eventually

C1, C2, C3 = "alice-consumer-1", "alice-consumer-2", "alice-consumer-3"
STALL_C1 = {"type": "stall", "resource": "deployments", "namespace": C1, "name": "consumer-1"}


async def _move_bob(world: World, host: int) -> tuple[str, str]:
    """bob publishes <subnet>.<host>; returns (the EndpointChangeWorkflow's id, the new endpoint)."""
    new = f"{world.subnet}.{host}"
    height = await world.edit_validator("bob", f"p2p={new}")
    await world.nudge_registry()
    return endpoint_change_id("alice", world.operator("bob"), height), new


# The rollout wait after a restart: wait_restarted (rollout, then catch-up, one activity) since issue 11 item
# 8; wait_rollout alone after a sync that restarted nothing, and in syncs recorded before.
WAITS = ("wait_rollout", "wait_restarted")


async def _generation_above(world: World, namespace: str, generation: int) -> bool:
    return world.generation(namespace) > generation


async def _waiting_on_rollout(world: World, namespace: str) -> bool:
    """A worker has started the consumer's wait_rollout activity (it is in flight, not just scheduled)."""
    desc = await world.handle(f"consumer-sync-alice-{namespace}").describe()
    return any(
        a.activity_type.name in WAITS and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for a in desc.raw_description.pending_activities
    )


def _assert_bob_at(world: World, new: str) -> None:
    for ns in (C1, C2):
        text = world.configmap_text(ns)
        assert f"@{new}:" in text, text
        assert f"@{world.subnet}.2:" not in text, text


def _generations(world: World) -> dict[str, int]:
    return {ns: world.generation(ns) for ns in (C1, C2, C3)}


def _one_rollout_each(world: World, before: dict[str, int], log: KubeLog) -> None:
    """consumer-1 and -2 rolled exactly once (one generation bump, one ConfigMap write); consumer-3 untouched."""
    after = _generations(world)
    assert after == {C1: before[C1] + 1, C2: before[C2] + 1, C3: before[C3]}, (before, after)
    assert [log.configmap_data_writes(ns) for ns in (C1, C2, C3)] == [1, 1, 0]


# ---- 2: a rollout that never progresses ----------------------------------------------------------------


async def test_stalled_rollout_fails_that_consumer_with_the_deadline_reason(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    # A short deadline (an operator's choice of progressDeadlineSeconds) and a controller that makes no progress.
    world.patch_workload_spec(C1, {"progressDeadlineSeconds": 1})
    await world.kube_fault(STALL_C1)
    before = _generations(world)

    wf_id, new = await _move_bob(world, 22)
    handle = world.handle(wf_id, EndpointChangeResult)
    result: EndpointChangeResult = await world.finished(wf_id, EndpointChangeResult, timeout=45)

    assert result.phase == Phase.FAILED
    by_ns = {c.consumer.namespace: c for c in result.consumers}
    assert "exceeded its progress deadline" in (by_ns[C1].error or ""), by_ns[C1]
    assert by_ns[C1].changed and by_ns[C1].restarted  # written and restarted once, then the rollout died
    assert by_ns[C2].error is None and by_ns[C2].restarted  # the other consumer is not held hostage
    progress = await world.progress(wf_id)
    assert progress.phase == Phase.FAILED and progress.reason == "1 consumer(s) failed"
    row = next(c for c in progress.consumers if c.namespace == C1)
    assert row.state == "failed" and "exceeded its progress deadline" in (row.detail or "")
    assert f"@{new}:" in world.configmap_text(C1)  # the peers stay written: the next sync restarts nothing
    assert world.generation(C1) == before[C1] + 1

    # Nothing retried the dead rollout: one wait_rollout attempt; no activity of this change is pending.
    history = await world.handle(f"consumer-sync-alice-{C1}").fetch_history()
    waits = [
        e
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name in WAITS
    ]
    assert len(waits) == 1
    failed = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    assert [
        e.activity_task_failed_event_attributes.failure.application_failure_info.type for e in failed
    ] == ["RolloutFailed"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    consumer_sync = await world.handle(f"consumer-sync-alice-{C1}").describe()
    assert list(consumer_sync.raw_description.pending_activities) == []
    sync = await world.consumer_sync(C1)
    assert not sync.pending and sync.results[sync.completed].error


async def test_a_sync_after_a_dead_rollout_still_reports_it(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    world.patch_workload_spec(C1, {"progressDeadlineSeconds": 1})
    await world.kube_fault(STALL_C1)
    before = world.generation(C1)
    wf_id, _ = await _move_bob(world, 26)
    first: EndpointChangeResult = await world.finished(wf_id, EndpointChangeResult, timeout=45)
    assert first.phase == Phase.FAILED

    # Asking again restarts nothing more (the template is at this peer set), but the rollout is still dead.
    code, out, err = await world.peersync("sync", "--consumer", "consumer-1", "--json")
    assert code == 1 and "the sync of alice-consumer-1 failed" in err, err  # printed, and a failing exit
    again = SyncResult.model_validate_json(out)
    assert world.generation(C1) == before + 1
    assert not again.restarted
    assert "exceeded its progress deadline" in (again.error or ""), again


# ---- 3: a storm of 409s on the ConfigMap -----------------------------------------------------------------


async def test_conflict_storm_on_the_configmap_still_writes_exactly_once(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    log = world.record_kube()
    before = _generations(world)
    # More 409s than one retry_on_conflict round absorbs (5 attempts): the activity retry has to finish it.
    await world.kube_fault(
        {
            "type": "conflict",
            "count": 6,
            "resource": "configmaps",
            "namespace": C1,
            "name": "consumer-1-config",
        }
    )

    wf_id, new = await _move_bob(world, 23)
    result: EndpointChangeResult = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE, result
    assert world.kube().active_faults() == []  # every 409 was served
    _assert_bob_at(world, new)
    _one_rollout_each(world, before, log)


async def _rolled_out(world: World, namespace: str) -> bool:
    return deployment_verdict(world.workload(namespace)).done


# ---- 4: the worker dies mid-rollout -----------------------------------------------------------------------


async def test_worker_sigkilled_mid_rollout_a_new_worker_finishes_with_one_rollout(world: World) -> None:
    first = await world.start_worker()
    await world.registry_ready()
    log = world.record_kube()
    before = _generations(world)
    await world.kube_fault(STALL_C1)

    wf_id, new = await _move_bob(world, 24)
    await eventually(lambda: _generation_above(world, C1, before[C1]), what="consumer-1's rollout to start")
    await eventually(lambda: _waiting_on_rollout(world, C1), what="the worker to watch the held rollout")
    await world.kill_worker(first)

    world.kube().clear_faults()  # the rollout completes while no worker is watching it
    await eventually(lambda: _rolled_out(world, C1), what="consumer-1's rollout to complete unwatched")
    await world.start_worker()
    result: EndpointChangeResult = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE, result
    assert all(c.error is None for c in result.consumers)
    _assert_bob_at(world, new)
    _one_rollout_each(world, before, log)
    [c1] = [c for c in result.consumers if c.consumer.namespace == C1]
    # When it ended nobody saw: no duration is claimed (the metric would count the worker's downtime).
    assert (
        c1.rollout
        and "done when the wait resumed" in c1.rollout
        and " after " not in c1.rollout.split("(")[0]
    )


# ---- 5: Temporal itself restarts -------------------------------------------------------------------------


async def test_temporal_restart_mid_workflow_the_change_completes(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    log = world.record_kube()
    before = _generations(world)
    await world.kube_fault(STALL_C1)

    wf_id, new = await _move_bob(world, 25)
    await eventually(lambda: _generation_above(world, C1, before[C1]), what="consumer-1's rollout to start")
    assert (await world.progress(wf_id)).phase == Phase.SYNCING

    worker = world.workers[0]
    await world.restart_temporal()  # same port, same SQLite file
    world.kube().clear_faults()
    result: EndpointChangeResult = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE, result
    assert worker.proc is not None and worker.proc.returncode is None  # the same worker rode it out
    _assert_bob_at(world, new)
    _one_rollout_each(world, before, log)
    # The registry survived too: it still answers and still refreshes.
    height = await world.edit_validator("carol", f"p2p={world.subnet}.3 (after the restart)")
    row: Any = await world.registry_sees("carol", height)
    assert row.endpoint == f"{world.subnet}.3"
