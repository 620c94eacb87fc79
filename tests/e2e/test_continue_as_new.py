"""Long-running entity workflows hand their whole state to a new run (continue-as-new) and lose nothing.

The dev server is told to suggest continue-as-new after a few history events, as a months-old registry
or a busy consumer would see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devnet.testbed import World, default_world, eventually, random_subnet
from workflows.contracts import EndpointChangeResult, Phase
from workflows.ids import consumer_sync_id, endpoint_change_id, registry_id

SUGGEST_AT = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"]


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

    async def registry_moved_on() -> bool:
        return await _runs(world, registry_id("alice")) >= 2

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
