"""Long-running entity workflows hand their whole state to a new run (continue-as-new) and lose nothing.

The dev server is told to suggest continue-as-new after a few history events, as a months-old registry
or a busy consumer would see it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from core.contracts import EndpointChangeResult, Phase
from core.ids import consumer_sync_id, endpoint_change_id, registry_id
from devnet.testbed import World, default_world, eventually, random_subnet

SUGGESTED = 40
SUGGEST_AT = ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGESTED}"]


@pytest.fixture
async def short_world(tmp_path: Path) -> AsyncIterator[World]:
    async with World(tmp_path, default_world(random_subnet()), temporal_args=SUGGEST_AT) as w:
        yield w


async def _runs(world: World, workflow_id: str) -> int:
    return len([wf async for wf in world.client.list_workflows(f"WorkflowId = '{workflow_id}'")])


async def test_registry_and_consumer_sync_continue_as_new_with_their_state(short_world: World) -> None:
    world = short_world
    await world.start_worker()
    await world.registry_ready()
    first_run = (await world.handle(registry_id("alice")).describe()).run_id

    async def registry_moved_on() -> bool:  # (it may have moved on once already before first_run was read)
        return (await world.handle(registry_id("alice")).describe()).run_id != first_run

    await eventually(registry_moved_on, timeout=60, what="the registry to continue as new")
    rows = await world.registry_ready()
    assert (await world.handle(registry_id("alice")).describe()).run_id != first_run
    assert sorted(r.moniker for r in rows) == ["alice", "bob", "carol", "dave"]

    # Several changes through consumer-1: its ConsumerSync continues as new between syncs and still
    # answers every change, with the sync counter carried over.
    for i in range(4):
        height = await world.edit_validator("bob", f"p2p={world.subnet}.{40 + i}")
        result = await world.finished(
            endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult
        )
        assert result.phase == Phase.DONE
        assert f"@{world.subnet}.{40 + i}:" in world.configmap_text("alice-consumer-1")
    assert await _runs(world, consumer_sync_id("alice", "alice-consumer-1")) >= 2
    state = await world.consumer_sync("alice-consumer-1")
    assert state.completed >= 4


async def test_a_chain_outage_keeps_the_registry_history_bounded_and_loses_no_move(
    short_world: World,
) -> None:
    """The chain's REST gateway is down while the watcher keeps nudging (it still sees blocks): the registry's
    refresh fails round after round, yet it continues as new whenever the history grows long, even while a
    refresh is waiting; and bob's move during the outage is found as a change once the chain answers."""
    world = short_world
    await world.start_worker()
    await world.registry_ready()
    registry = world.handle(registry_id("alice"))
    runs_before = await _runs(world, registry_id("alice"))
    await world.admin("faults", {"target": "rest", "fail_next": 1_000_000, "fail_status": 503})
    moved = f"{world.subnet}.45"
    height = await world.edit_validator("bob", f"p2p={moved}")  # the admin API is never faulted

    async def continued_twice_during_the_outage() -> bool:
        with contextlib.suppress(RPCError):  # a nudge that lands between two runs is lost, as it may be live
            await world.nudge_registry()
        return await _runs(world, registry_id("alice")) >= runs_before + 2

    await eventually(
        continued_twice_during_the_outage, 90, "the registry to continue as new during the outage"
    )
    lengths = [
        (await world.client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()).history_length
        async for wf in world.client.list_workflows(f"WorkflowId = '{registry_id('alice')}'")
        if wf.status != WorkflowExecutionStatus.RUNNING
    ]
    assert lengths and max(lengths) <= SUGGESTED + 30, lengths  # bounded: no run outgrows the suggestion much
    assert (await world.registry_row("bob")).effective != moved  # nothing read during the outage
    assert [w async for w in world.client.list_workflows("WorkflowType = 'EndpointChangeWorkflow'")] == []

    await world.admin("faults", {"clear": True})
    change = endpoint_change_id("alice", world.operator("bob"), height)
    await world.started(change, timeout=60)  # the edit's own height: a change, not a silent new baseline
    row = await world.registry_row("bob")
    assert (row.effective, row.height) == (moved, height), row
    assert (await registry.describe()).status == WorkflowExecutionStatus.RUNNING
