"""An approval shows as received (issue 13, item 6): `peersync approve ID` says the change got it and what
happens next; a paused change reads `approved (paused)` from then on, not `awaiting-approval (paused)`, and
a second approve says it was already received. Emulated only: CLI wording over the same workflow the
approval tests of tests/e2e/test_control.py run on both testbeds."""

from __future__ import annotations

import pytest

from core.contracts import EndpointChangeResult, Phase
from devnet.testbed import World, eventually
from tests.e2e.control_kit import Node, awaiting_approval, peersync_ok, snapshot

pytestmark = pytest.mark.emulated_only(reason="CLI wording; approval itself: test_control on both testbeds")
WIDE = {"COLUMNS": "300"}


async def test_an_approval_of_a_paused_change_reads_approved_and_says_what_comes_next(world: World) -> None:
    await world.start_worker(PEERSYNC_REQUIRE_APPROVAL="true")
    await world.registry_ready()
    before = snapshot(world)
    new = f"{world.subnet}.22"
    async with Node(new) as node:
        await node.up()
        wf_id = await awaiting_approval(world, "--validator", "bob", "--endpoint", new)
        await peersync_ok(world, "pause", wf_id)
        await eventually(lambda: _paused(world, wf_id), what="the pause to be seen")

        said = await peersync_ok(world, "approve", wf_id)
        assert f"approval received by {wf_id}" in said, said
        assert f"paused: it goes on after `peersync resume {wf_id}`" in said, said
        progress = await world.progress(wf_id)
        assert progress.phase == Phase.APPROVED and progress.paused, progress
        shown = await peersync_ok(world, "status", wf_id, **WIDE)
        assert "approved (paused)" in shown and "awaiting-approval" not in shown, shown
        assert snapshot(world) == before  # received, held by the pause: nothing written or restarted yet

        again = await peersync_ok(world, "approve", wf_id)
        assert f"{wf_id} was already approved" in again and "resume" in again, again
        assert "approve ignored" not in ((await world.progress(wf_id)).reason or "")

        await peersync_ok(world, "resume", wf_id)
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE and all(c.restarted for c in result.consumers), result


async def test_an_approval_of_a_running_change_says_its_consumers_now_sync(world: World) -> None:
    await world.start_worker(PEERSYNC_REQUIRE_APPROVAL="true")
    await world.registry_ready()
    new = f"{world.subnet}.22"
    async with Node(new) as node:
        await node.up()
        wf_id = await awaiting_approval(world, "--validator", "bob", "--endpoint", new)
        said = await peersync_ok(world, "approve", wf_id)
        assert f"approval received by {wf_id}; its consumers now sync one at a time" in said, said
        assert f"peersync status {wf_id} --watch" in said, said
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE


async def _paused(world: World, wf_id: str) -> bool:
    return (await world.progress(wf_id)).paused
