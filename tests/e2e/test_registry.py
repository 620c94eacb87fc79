"""The endpoint registry on the devnet: invalid publications change nothing, operator overrides hold until
the chain publishes something newer, and a quiet refresh costs the registry's history almost nothing."""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory

from core.contracts import EndpointChangeResult, Phase, SyncResult
from core.ids import endpoint_change_id, registry_id
from devnet.scenario import ValidatorSpec
from devnet.testbed import World, default_world, eventually, random_subnet
from tests.e2e.control_kit import Node, snapshot, update

C1, C2, C3 = "alice-consumer-1", "alice-consumer-2", "alice-consumer-3"
REFRESH_ACTIVITY = "refresh_registry"  # tried once as a local activity, then as a regular one
LOCAL_ACTIVITY_MARKER = "core_local_activity"


# ---- 6: invalid published endpoints ----------------------------------------------------------------------


async def test_invalid_or_missing_endpoints_change_nothing_and_the_last_valid_one_stays(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    log = world.record_kube()
    before = snapshot(world)
    sub = world.subnet
    valid = {m: f"{sub}.{i}" for i, m in enumerate(("alice", "bob", "carol", "dave"), start=1)}

    cases = [
        # (moniker, details, status, words the reason must carry)
        ("bob", "p2p=10.0.0.5", "invalid", ["10.0.0.5", "private"]),
        ("carol", "p2p=1.2.3.4;rm -rf /", "invalid", []),
        ("dave", f"p2p={sub}.41 p2p={sub}.42", "invalid", ["ambiguous"]),
        ("bob", "moving next week, stay tuned", "missing", []),
    ]
    for moniker, details, status, words in cases:
        height = await world.edit_validator(moniker, details)
        row = await world.registry_sees(moniker, height)
        assert row.status.value == status, row
        assert row.reason, row  # every non-valid row says why
        for word in words:
            assert word in row.reason, row
        assert row.effective == valid[moniker], row  # the last valid endpoint stays in effect

    # What an operator sees.
    code, out, err = await world.peersync("registry", "--json")
    assert code == 0, err
    rows = {r["moniker"]: r for r in json.loads(out)}
    expected = {"alice": "valid", "bob": "missing", "carol": "invalid", "dave": "invalid"}
    assert {m: r["status"] for m, r in rows.items()} == expected
    for moniker, row in rows.items():
        assert set(row) >= {"operator_address", "moniker", "endpoint", "status", "reason", "height"}
        assert (row["reason"] is None) == (moniker == "alice"), row
    assert rows["carol"]["endpoint"] == "1.2.3.4;rm"  # the token as published (up to the space), never used
    assert rows["bob"]["endpoint"] is None

    # Nothing started, nothing written, nothing restarted.
    changes = [w async for w in world.client.list_workflows("WorkflowType = 'EndpointChangeWorkflow'")]
    assert changes == []
    assert snapshot(world) == before
    assert [log.configmap_writes(ns) for ns in (C1, C2, C3)] == [0, 0, 0]

    # A sync now (the drift check would do the same) keeps the last valid endpoints: no write, no restart.
    code, out, err = await world.peersync("sync", "--consumer", "consumer-1", "--json")
    assert code == 0, err
    result = SyncResult.model_validate_json(out)
    assert not result.changed and not result.restarted and result.error is None, result
    assert sorted(p.split("@")[1].rsplit(":", 1)[0] for p in result.new_peers) == sorted(
        valid[m] for m in ("bob", "carol", "dave")
    )
    assert snapshot(world) == before


# ---- 7: operator override ----------------------------------------------------------------------------------


async def test_override_holds_until_the_chain_publishes_newer_and_clear_reverts(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    sub = world.subnet
    pinned, newer = f"{sub}.30", f"{sub}.31"

    async with Node(pinned, ("consumer-1", "consumer-2")) as node:
        await node.up()  # bob's nodes answer at the pinned address before the chain says anything
        wf_id = await update(world, "--validator", "bob", "--endpoint", pinned)
        assert (await world.finished(wf_id, EndpointChangeResult)).phase == Phase.DONE
        _assert_bob_at(world, pinned)
        row = await world.registry_row("bob")
        assert (row.override, row.effective, row.endpoint) == (pinned, pinned, f"{sub}.2")
        generations = {ns: world.generation(ns) for ns in (C1, C2, C3)}

        # Refreshes that find bob's record unchanged, or changed without a new endpoint, keep the override.
        height = await world.edit_validator("carol", f"p2p={sub}.3 (new website)")
        await world.registry_sees("carol", height)
        height = await world.edit_validator("bob", f"p2p={sub}.2 (maintenance window on Friday)")
        await world.registry_sees("bob", height)
        await _refreshes(world, 3)
        row = await world.registry_row("bob")
        assert (row.override, row.effective) == (pinned, pinned), row
        _assert_bob_at(world, pinned)
        assert {ns: world.generation(ns) for ns in (C1, C2, C3)} == generations  # nothing rolled

        # The chain publishes a newer endpoint for bob: it wins over the override.
        height = await world.edit_validator("bob", f"p2p={newer}")
        row = await world.registry_sees("bob", height)
        assert (row.override, row.effective) == (None, newer), row
        change = endpoint_change_id("alice", world.operator("bob"), height)
        assert (await world.finished(change, EndpointChangeResult)).phase == Phase.DONE
        _assert_bob_at(world, newer)

        # Pin again, then `--clear`: the chain's endpoint is back in effect, and on the consumers.
        wf_id = await update(world, "--validator", "bob", "--endpoint", pinned)
        assert (await world.finished(wf_id, EndpointChangeResult)).phase == Phase.DONE
        _assert_bob_at(world, pinned)
        code, out, err = await world.peersync("update", "--validator", "bob", "--clear")
        assert code == 0, (out, err)
        row = await world.registry_row("bob")
        assert (row.override, row.effective) == (None, newer), row
        # The registry starts the change back (nobody else would): consumers follow, with one more rollout.
        cleared = await eventually(
            lambda: _cleared_change(world), what="the registry to start the change back"
        )
        result = await world.finished(cleared, EndpointChangeResult)
        assert result.phase == Phase.DONE and result.endpoint == newer, result
        assert all(c.restarted for c in result.consumers)
        _assert_bob_at(world, newer)


def _assert_bob_at(world: World, host: str) -> None:
    for ns in (C1, C2):
        text = world.configmap_text(ns)
        assert f"@{host}:" in text, text


async def _cleared_change(world: World) -> str | None:
    runs = world.client.list_workflows("WorkflowType = 'EndpointChangeWorkflow'")
    found = [w.id async for w in runs if w.id.endswith("-override-cleared-1")]
    return found[0] if found else None


async def _refreshes(world: World, n: int, nudge: bool = True) -> int:
    """Wait until the registry has run `n` more refreshes (counted in its history), nudging it unless
    `nudge` is off (then its timer drives them); returns the total."""
    start = await _refresh_count(world)

    async def done() -> int:
        count = await _refresh_count(world)
        if count >= start + n:
            return count
        if nudge:
            await world.nudge_registry()
        return 0

    return await eventually(done, 30, f"{n} registry refreshes")


async def _refresh_count(world: World) -> int:
    history = await world.handle(registry_id("alice")).fetch_history()
    return len(_refresh_markers(history))


def _refresh_markers(history: WorkflowHistory) -> list[int]:
    """Indexes of the events that carry a refresh's result: its local-activity marker or, when the quick
    local attempt failed, the completion of its regular activity (failed local markers do not count)."""
    refreshes = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == REFRESH_ACTIVITY
    }
    return [
        i
        for i, e in enumerate(history.events)
        if (
            e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
            and not e.marker_recorded_event_attributes.HasField("failure")
        )
        or (
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and e.activity_task_completed_event_attributes.scheduled_event_id in refreshes
        )
    ]


# ---- 8: what a quiet refresh costs --------------------------------------------------------------------------

EXTRA_VALIDATORS = 40


@pytest.fixture
async def crowded_world(tmp_path: Path) -> AsyncIterator[World]:
    """The default world plus 40 validators that run no consumer: a table big enough that returning all of
    it on every refresh would show in the history."""
    scenario = default_world(random_subnet())
    sub = scenario.validators[0].endpoint.rsplit(".", 1)[0]  # type: ignore[union-attr]
    scenario.validators += [
        ValidatorSpec(moniker=f"extra-{i:02d}", details=f"p2p={sub}.{100 + i}")
        for i in range(EXTRA_VALIDATORS)
    ]
    async with World(tmp_path, scenario) as w:
        yield w


QUIET_REFRESHES = 5
# Measured ~850 B and 6 events; the table in full is ~15 KB here. (Target: <= 2 KB at 300 validators: bench.)
QUIET_REFRESH_MAX_BYTES = 1500


async def test_a_quiet_refresh_adds_little_history(crowded_world: World) -> None:
    world = crowded_world
    await world.start_worker()
    await world.registry_ready(4 + EXTRA_VALIDATORS)
    handle = world.handle(registry_id("alice"))

    async def first_drift_check_done() -> bool:
        # It asks the registry for its snapshot once: events of that ask are not a quiet refresh's.
        runs = [wf async for wf in world.client.list_workflows("WorkflowType = 'ReconcileWorkflow'")]
        return bool(runs) and all(wf.status != WorkflowExecutionStatus.RUNNING for wf in runs)

    await eventually(first_drift_check_done, 30, "the registry's first drift check to end")
    await _refreshes(world, 1, nudge=False)  # the window below starts after the ask's events
    start = await handle.fetch_history()
    first = _refresh_markers(start)
    full_table = start.events[first[0]].ByteSize()

    await _refreshes(world, QUIET_REFRESHES, nudge=False)  # the timer's refreshes: nothing else happens
    history = await handle.fetch_history()
    markers = _refresh_markers(history)
    # From just after the last refresh already seen to just after the last one counted: whole cycles.
    window = history.events[first[-1] + 1 : markers[len(first) - 1 + QUIET_REFRESHES] + 1]
    events, size = len(window), sum(e.ByteSize() for e in window)
    per_refresh_bytes, per_refresh_events = size / QUIET_REFRESHES, events / QUIET_REFRESHES
    print(
        f"registry: first refresh marker {full_table} B; quiet refresh {per_refresh_bytes:.0f} B, "
        f"{per_refresh_events:.1f} events (over {QUIET_REFRESHES})"
    )
    quiet = [history.events[i].ByteSize() for i in markers[len(first) : len(first) + QUIET_REFRESHES]]
    assert full_table > 10 * max(quiet), (full_table, quiet)  # only the first refresh carries the table
    assert per_refresh_bytes <= QUIET_REFRESH_MAX_BYTES, per_refresh_bytes
    assert per_refresh_events <= 8, per_refresh_events  # timer, workflow task, marker: one timer per refresh
    # And the timer drives one refresh per period (refresh_seconds is 1 s in the harness), not one per two.
    times = [history.events[i].event_time.ToDatetime() for i in markers[len(first) - 1 :]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert statistics.median(gaps) < 1.6, gaps


# ---- issue 9, item 6: a new registry checks for drift at once --------------------------------------------


async def test_a_new_registry_repairs_what_moved_while_nothing_watched_within_seconds(world: World) -> None:
    """bob moves before peersync first runs (stale ConfigMaps at first install): the registry's first refresh
    takes the chain as its baseline (no change is started), and its drift check repairs the consumers at once,
    without waiting for the schedule (the worker runs none here)."""
    moved = f"{world.subnet}.44"
    await world.edit_validator("bob", f"p2p={moved}")
    assert f"@{moved}:" not in world.configmap_text(C1)  # stale: nobody was watching
    await world.start_worker()
    await world.registry_ready()

    async def repaired() -> bool:
        return all(f"@{moved}:" in world.configmap_text(ns) for ns in (C1, C2))

    await eventually(repaired, 30, "the first drift check to repair consumer-1 and consumer-2")
    checks = [w async for w in world.client.list_workflows("WorkflowType = 'ReconcileWorkflow'")]
    assert [w.id.startswith("reconcile-alice-registry-start-") for w in checks] == [True], checks
    changes = [w async for w in world.client.list_workflows("WorkflowType = 'EndpointChangeWorkflow'")]
    assert changes == []  # the first sight is a baseline, repaired as drift, not a change
    assert f"@{moved}:" not in world.configmap_text(C3)  # bob is not opted in to consumer-3
