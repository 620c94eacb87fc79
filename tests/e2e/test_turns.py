"""An EndpointChange asks its consumers one at a time and every wait for an answer ends or is re-asked
(workflows/sync_wait.py): pause and cancel act between consumers; a ConsumerSync terminated mid-change is
recreated by the re-ask; a reply lost on the asker's side is asked for again and answered from the
ConsumerSync's record, with no second sync.

bob moves to <subnet>.22 by operator override, which touches alice-consumer-1 then alice-consumer-2 (in
that order); a stalled rollout keeps the change inside one consumer while the test acts.
"""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from core.contracts import ConsumerStep, EndpointChangeResult, Phase
from core.ids import consumer_sync_id
from devnet.testbed import World, eventually
from tests.e2e.control_kit import (
    Node,
    idle,
    peersync_ok,
    snapshot,
    temporal,
    update,
    workflow_runs,
)
from tests.e2e.test_control import assert_operator_cancelled

C1, C2 = "alice-consumer-1", "alice-consumer-2"


def stall(world: World, namespace: str) -> dict[str, Any]:
    """The fault that keeps `namespace`'s rollout from progressing until cleared."""
    workload = world.workload(namespace)
    plural = "deployments" if workload["kind"] == "Deployment" else "statefulsets"
    return {"type": "stall", "resource": plural, "namespace": namespace, "name": workload["metadata"]["name"]}


async def row(world: World, wf_id: str, namespace: str, step: str) -> ConsumerStep | None:
    """The change's progress row of `namespace`, once it is at `step`."""
    found = [c for c in (await world.progress(wf_id)).consumers if c.namespace == namespace]
    return found[0] if found and found[0].step == step else None


async def rolling(world: World, namespace: str, generation: int) -> bool:
    """The rollout onto the new peers has started (the workload's template changed)."""
    return world.generation(namespace) == generation + 1


async def start_with_first_consumer_stalled(world: World, node: Node) -> tuple[str, dict[str, Any]]:
    """bob's change, held inside consumer-1's rollout; returns its id and the snapshot from before."""
    await world.start_worker()
    await world.registry_ready()
    before = snapshot(world)
    await world.kube_fault(stall(world, C1))
    await node.up()
    wf_id = await update(world, "--validator", "bob", "--endpoint", node.host)
    await eventually(lambda: rolling(world, C1, before[C1][1]), what="consumer-1's rollout to start")
    return wf_id, before


async def test_a_pause_during_the_first_consumer_holds_before_the_second(world: World) -> None:
    async with Node(f"{world.subnet}.22") as node:
        wf_id, before = await start_with_first_consumer_stalled(world, node)
        await peersync_ok(world, "pause", wf_id)
        world.kube().clear_faults()  # consumer-1 finishes: a pause never stops a consumer half-way

        await eventually(lambda: row(world, wf_id, C1, "done"), what="consumer-1 to finish")
        await eventually(lambda: idle(world, wf_id), what="the hold before consumer-2")
        progress = await world.progress(wf_id)
        assert progress.paused and progress.phase == Phase.SYNCING
        assert [c.step for c in progress.consumers] == ["done", "pending"]
        assert snapshot(world)[C2] == before[C2]  # consumer-2 untouched ...
        assert not await world.exists(consumer_sync_id("alice", C2))  # ... not even asked

        await peersync_ok(world, "resume", wf_id)
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE
    for ns in (C1, C2):
        assert f"@{node.host}:" in world.configmap_text(ns)
        assert world.generation(ns) == before[ns][1] + 1, ns


async def test_a_cancel_during_the_first_consumer_stops_before_the_second(world: World) -> None:
    async with Node(f"{world.subnet}.22") as node:
        wf_id, before = await start_with_first_consumer_stalled(world, node)
        out = await peersync_ok(world, "cancel", wf_id, "--reason", "wrong address")
        assert "before the next consumer" in out and "wrong address" in out
        world.kube().clear_faults()
        await assert_operator_cancelled(world, wf_id)

    progress = await world.progress(wf_id)
    assert "synced, left as they are: alice-consumer-1" in (progress.reason or ""), progress.reason
    assert "not asked: alice-consumer-2" in (progress.reason or "") and "wrong address" in (
        progress.reason or ""
    )
    assert [(c.step, c.state) for c in progress.consumers] == [
        ("done", "restarted"),
        ("pending", "not asked"),
    ]
    assert f"@{node.host}:" in world.configmap_text(C1) and world.generation(C1) == before[C1][1] + 1
    assert snapshot(world)[C2] == before[C2]
    assert not await world.exists(consumer_sync_id("alice", C2))


async def test_a_consumer_sync_terminated_mid_change_is_recreated_by_the_re_ask(world: World) -> None:
    async with Node(f"{world.subnet}.22") as node:
        wf_id, before = await start_with_first_consumer_stalled(world, node)
        waiting = await eventually(lambda: row(world, wf_id, C1, "sync"), what="consumer-1 asked")
        assert f"waiting for {C1}'s sync (asked 1x, last " in (waiting.detail or ""), waiting

        sync_id = consumer_sync_id("alice", C1)
        await world.handle(sync_id).terminate("test: lost mid-rollout")
        world.kube().clear_faults()
        result = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE, result
    runs = [run for wf, run in await workflow_runs(world, "ConsumerSyncWorkflow") if wf == sync_id]
    assert len(runs) == 2  # the terminated one and the one the re-ask started
    assert (await world.handle(sync_id).describe()).status == WorkflowExecutionStatus.RUNNING
    # The recreated sync found the ConfigMap written and the pods rolling onto it: no second restart.
    for ns in (C1, C2):
        assert f"@{node.host}:" in world.configmap_text(ns)
        assert world.generation(ns) == before[ns][1] + 1, ns


async def _reply_received_before(world: World, wf_id: str) -> int:
    """The id of the last workflow task completed before the change received consumer-1's answer."""
    events = (await world.handle(wf_id).fetch_history()).events
    reply = next(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == "sync_done"
    )
    return max(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < reply
    )


async def test_a_lost_reply_is_asked_for_again_and_answered_without_a_second_sync(world: World) -> None:
    """The change is reset to before consumer-1's answer without re-applying signals (what an operator's
    `temporal workflow reset --reapply-exclude Signal` does): that answer is lost to it. The re-ask is
    answered from consumer-1's record, and consumer-2, asked again while its sync runs, syncs once."""
    await world.start_worker()
    await world.registry_ready()
    before = snapshot(world)
    await world.kube_fault(stall(world, C2))
    async with Node(f"{world.subnet}.22") as node:
        await node.up()
        wf_id = await update(world, "--validator", "bob", "--endpoint", node.host)
        await eventually(lambda: row(world, wf_id, C2, "sync"), what="consumer-1 answered, consumer-2 asked")
        await eventually(lambda: rolling(world, C2, before[C2][1]), what="consumer-2's rollout to start")

        event_id = await _reply_received_before(world, wf_id)
        code, out, err = await temporal(
            world, "workflow", "reset", "-w", wf_id, "-e", str(event_id), "--reapply-exclude", "Signal",
            "--reason", "test: lose a reply",
        )  # fmt: skip
        assert code == 0, (out, err)
        await eventually(lambda: _asked_again(world, wf_id), what="consumer-1 asked again")
        world.kube().clear_faults()
        result = await world.finished(wf_id, EndpointChangeResult)

    assert result.phase == Phase.DONE, result
    for ns in (C1, C2):  # idle: a second sync queued by the re-ask would have run by then
        sync_id = consumer_sync_id("alice", ns)
        await eventually(lambda: idle(world, sync_id), what=f"{ns}'s sync to go idle")  # noqa: B023
        state = await world.consumer_sync(ns)
        assert (state.completed, state.pending) == (1, []), ns  # answered again, not synced again
        assert world.generation(ns) == before[ns][1] + 1, ns
        assert f"@{node.host}:" in world.configmap_text(ns)


async def _asked_again(world: World, wf_id: str) -> bool:
    """consumer-1 done in the reset run: only a re-ask can have brought its answer back."""
    return await row(world, wf_id, C1, "done") is not None
