"""Live probe feedback (issue 13 item 3): while a change probes its new endpoint, `status`, `status -w`,
`update --wait` and the Temporal UI's details show the attempts so far, the last error and the deadline;
`status -w` and `update --wait` stream one line per event rather than only repainting a table."""

from __future__ import annotations

import asyncio
import re

import pytest

from core.contracts import Phase, Progress
from devnet.testbed import World, eventually
from tests.e2e.control_kit import Node, current_details, peersync_ok

pytestmark = pytest.mark.emulated_only(reason="CLI output and UI details; the workflow is the same on both")
# Long enough that the node comes up before it runs out: the feedback is about the wait, not the block.
BUDGET = {"PEERSYNC_PROBE_BUDGET": "60s"}
ATTEMPT_FAILED = re.compile(r"probe attempt \d+(-\d+)? failed: .+ \(deadline \d\d:\d\d:\d\dZ\)")


async def change_of(world: World, moniker: str, before: str | None) -> str | None:
    """The validator's newest change once it is not `before` (the registry starts it)."""
    change = (await world.registry_row(moniker)).change
    return change if change != before else None


async def probing_after(world: World, workflow_id: str, attempts: int) -> Progress | None:
    try:
        progress = await world.progress(workflow_id)
    except Exception:  # not started, or not yet answering: look again
        return None
    probe = progress.probe
    ok = progress.phase == Phase.PROBING and probe is not None and probe.attempts >= attempts
    return progress if ok else None


async def test_probe_attempts_last_error_and_deadline_show_while_probing_and_stream_as_events(
    world: World,
) -> None:
    await world.start_worker(**BUDGET)
    await world.registry_ready()
    new = f"{world.subnet}.101"  # nothing answers there until the test says so
    before = (await world.registry_row("bob")).change
    waiting = asyncio.create_task(
        world.peersync("update", "--validator", "bob", "--endpoint", new, "--yes", "--wait")
    )

    async def started() -> str | None:
        assert not waiting.done(), waiting.result()  # refused: say why rather than time out
        return await change_of(world, "bob", before)

    change = await eventually(started, 90, "the change to start")  # a loaded machine: seconds
    watching = asyncio.create_task(world.peersync("status", change, "-w"))

    progress = await eventually(lambda: probing_after(world, change, 2), 45, "two failed probe attempts")
    assert progress.probe is not None and progress.probe.last_error, progress
    # "<new> unreachable on <port> (connection refused), ...": the operator's words, the address said once.
    assert f"{new} unreachable on" in progress.probe.last_error, progress.probe
    assert "(connection refused)" in progress.probe.last_error, progress.probe
    assert progress.probe.last_error.count(new) == 1, progress.probe
    # `status` (a table) and the UI details say it while probing, not only once blocked.
    table = await peersync_ok(world, "status", change, COLUMNS="200")
    assert re.search(
        r"probe: \d+ attempts, last failed: .*deadline \d\d:\d\d:\d\dZ", " ".join(table.split())
    ), table
    details = await current_details(world, change)
    assert re.search(r"probe: \d+ attempts, last failed: .*; deadline \d\d:\d\d:\d\dZ", details), details

    async with Node(new) as node:
        await node.up()
        code, out, err = await asyncio.wait_for(waiting, 120)
        assert code == 0, (out, err)
        watch_code, watched, watch_err = await asyncio.wait_for(watching, 60)
    assert watch_code == 0, (watched, watch_err)
    for stream in (out, watched):
        lines = stream.splitlines()
        assert any(ATTEMPT_FAILED.search(line) for line in lines), stream
        assert any("probe passed at attempt" in line for line in lines), stream
        assert "phase syncing" in stream and "phase done" in stream, stream
        assert "alice-consumer-1 (consumer-1): restarted" in stream, stream
    # Events come in the order they happened: the failures before the pass, the pass before the sync.
    assert (
        out.index("failed:")
        < out.index("probe passed")
        < out.index("phase syncing")
        < out.index("phase done")
    )
