"""The rollout slot asked early (issue 11 item 8): an EndpointChange's sync asks the cluster's rollout slot at
its start, so the slots workflow's round trip overlaps the sync's reads and write. A sync that then needs no
restart gives the slot back (after its grant, so no grant is left in flight): the slot never leaks, and the
next change's rollouts are not held back by it. Emulated only: slot bookkeeping, the same on both testbeds."""

from __future__ import annotations

import pytest

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id, rollout_slots_id
from devnet.testbed import World, eventually
from tests.e2e.control_kit import update
from workflows.rollout_slots import SlotsState

pytestmark = pytest.mark.emulated_only(reason="rollout-slot bookkeeping of the workflows, not of the testbed")


async def slots_free(world: World) -> bool:
    handle = world.client.get_workflow_handle(rollout_slots_id("alice"))
    slots = await handle.query("slots", result_type=SlotsState)
    return not slots.holders and not slots.queue


async def test_a_change_that_needs_no_restart_gives_its_early_slot_back(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    new = f"{world.subnet}.22"
    height = await world.edit_validator("bob", f"p2p={new}")
    moved = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult, timeout=90
    )
    assert moved.phase == Phase.DONE and all(c.restarted for c in moved.consumers), moved
    await eventually(lambda: slots_free(world), what="the moved consumers' slots back")

    # The same endpoint again, by hand: every sync expects a restart, asks its slot early, and needs none.
    wf_id = await update(world, "--validator", "bob", "--endpoint", new)
    again = await world.finished(wf_id, EndpointChangeResult, timeout=90)
    assert again.phase == Phase.DONE and again.consumers, again
    assert not any(c.restarted or c.changed for c in again.consumers), again
    await eventually(lambda: slots_free(world), what="the early-asked slots back")
