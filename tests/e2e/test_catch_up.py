"""Catch-up gating: after a restart, the rollout slot is held until the consumer's nodes are signing again
(CometBFT `catching_up: false` and a height that advances), so the next consumer never restarts while the
previous one is still replaying blocks; a node that never catches up fails its sync with the reason."""

from __future__ import annotations

import json

from core.contracts import EndpointChangeResult, Phase
from core.ids import consumer_sync_id, endpoint_change_id
from devnet.testbed import World
from workflows import policies

C1, C2 = "alice-consumer-1", "alice-consumer-2"
CATCH_UP_SECONDS = 3.0  # long enough that a slot released at "Ready" would visibly overlap the next restart


def one_signer(world: World) -> None:
    """One replica each, a Deployment that stops its old pod first: restarts any signer guard lets through."""
    world.patch_workload_spec(C1, {"replicas": 1, "strategy": {"type": "Recreate"}})
    world.patch_workload_spec(C2, {"replicas": 1})


async def activity_times(world: World, namespace: str) -> dict[str, tuple[float, float]]:
    """Activity type -> (scheduled, completed) times in the consumer's history (the first of each type). A
    local activity (its marker) ran inside its workflow task: from that task's start to the marker."""
    history = await world.handle(consumer_sync_id("alice", namespace)).fetch_history()
    scheduled: dict[int, tuple[str, float]] = {}
    times: dict[str, tuple[float, float]] = {}
    task_started = 0.0
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.HasField("workflow_task_started_event_attributes"):
            task_started = at
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and marker.marker_name == "core_local_activity":
            data = json.loads(marker.details["data"].payloads[0].data)
            times.setdefault(data["activity_type"], (task_started, at))
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name,
                at,
            )
        if event.HasField("activity_task_completed_event_attributes"):
            name, start = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            times.setdefault(name, (start, at))
    return times


async def test_the_next_consumer_restarts_only_once_the_previous_one_caught_up(world: World) -> None:
    world.devnet.chain.nodes.catch_up_seconds = CATCH_UP_SECONDS  # type: ignore[union-attr]
    one_signer(world)
    await world.start_worker(PEERSYNC_MAX_PARALLEL_ROLLOUTS="1")
    await world.registry_ready()
    restarts = world.devnet.node_restarts["alice"]
    seen_before = len(restarts.restarts)

    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    result = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult, timeout=90
    )

    assert result.phase == Phase.DONE, result
    assert sorted(c.consumer.namespace for c in result.consumers) == [C1, C2]
    for ns in (C1, C2):
        # The sync that restarted (the change's own, or one it was coalesced with) says the nodes caught up.
        synced = [r for r in (await world.consumer_sync(ns)).results.values() if r.restarted]
        assert len(synced) == 1 and "caught up at height" in (synced[0].caught_up or ""), synced
    # The emulated nodes really went through a restart (a new pod revision turned Ready) ...
    assert {ns for ns, _ in restarts.restarts[seen_before:]} == {C1, C2}
    windows = {ns: await activity_times(world, ns) for ns in (C1, C2)}
    first, second = sorted((C1, C2), key=lambda ns: windows[ns]["restart_workload"][0])
    # ... the first consumer's nodes were waited for well past its Ready rollout (one activity, wait_restarted,
    # waits for both: from the restart, its nodes take at least CATCH_UP_SECONDS after Ready) ...
    restarted = windows[first]["restart_workload"][1]
    caught_up = windows[first]["wait_restarted"][1]
    assert caught_up - restarted >= CATCH_UP_SECONDS, windows[first]
    # ... and the second consumer restarted only after that.
    assert windows[second]["restart_workload"][0] >= caught_up, windows


async def test_a_node_that_never_catches_up_fails_its_sync_after_the_deadline(world: World) -> None:
    one_signer(world)
    await world.admin("node", {"validator": "alice", "consumer": "consumer-1", "catching_up": True})
    await world.start_worker(PEERSYNC_CATCH_UP_DEADLINE="3s")
    await world.registry_ready()

    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    result = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult, timeout=90
    )

    assert result.phase == Phase.FAILED, result
    stuck = next(r for r in (await world.consumer_sync(C1)).results.values() if r.restarted)
    assert stuck.error is not None and stuck.caught_up is None, stuck
    assert "nodes of alice-consumer-1 not caught up after 3s" in stuck.error, stuck.error
    assert f"node {world.subnet}.1: catching up at height" in stuck.error, stuck.error
    assert stuck.rollout and "rolled out" in stuck.rollout, stuck  # the rollout itself completed: reported
    # The failure released the slot: the other consumer still restarted and caught up.
    other = next(r for r in (await world.consumer_sync(C2)).results.values() if r.restarted)
    assert other.error is None and other.caught_up, other
    history = await world.handle(consumer_sync_id("alice", C1)).fetch_history()
    failures = [
        e.activity_task_failed_event_attributes.failure.application_failure_info.type
        for e in history.events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    assert failures == [policies.CATCH_UP_FAILED], failures  # one attempt: non-retryable
