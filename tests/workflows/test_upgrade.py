"""An upgrade with workflows in flight: a worker of the previous release starts them, a worker of this code
takes over, and they finish (issue 11 item 7).

The previous release is checked out of git (`git archive`) and run as a real `peersync worker` process; this
code's worker then replaces it, as a rolling update of the Deployment would. Committed histories
(test_replay.py) show old code paths replay; this shows what replay cannot: that what the old code started
moves over to the new paths (the registry continues as new to become the one writer; a change waiting for
approval commits itself to it) without a single failed workflow task.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from core.contracts import EndpointChangeRequest, EndpointChangeResult, Phase
from core.ids import consumer_sync_id, registry_id
from devnet.processes import ChildProcess
from devnet.testbed import World, default_world, eventually, random_subnet
from tests.e2e.control_kit import wait_phase

# The last commit before the registry became the one writer of intent: what is deployed before this one.
PREVIOUS_RELEASE = "93f42b7da7ff2bd272be8a97b7642472ebbb376a"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with World(tmp_path, default_world(random_subnet())) as w:
        yield w


@pytest.fixture
def previous_release(tmp_path: Path) -> Path:
    """The previous release's source tree, from git (a shallow clone without it cannot run this test)."""
    tree = tmp_path / "previous"
    tree.mkdir()
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], capture_output=True
    )
    if found.returncode != 0:
        pytest.skip(
            f"UPGRADE NOT CHECKED: commit {PREVIOUS_RELEASE[:12]} (the previous release) is not in this clone "
            "(shallow?); fetch the history to run it"
        )
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PREVIOUS_RELEASE, "workflows", "activities", "workers"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


async def start_previous_worker(world: World, tree: Path, **extra: str) -> ChildProcess:
    """`peersync worker` of the previous release: its packages first on the path, this venv's libraries."""
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); from workers.cli import main; "
        "sys.argv = ['peersync', 'worker', '--no-schedule']; main()"
    )
    child = ChildProcess(
        "worker-alice-previous",
        [sys.executable, "-c", code],
        log_file=world.tmp / "worker-alice-previous.log",
        env=world.env("alice", **extra),
    )
    await child.start()
    world.workers.append(child)
    return child


async def patches(world: World, workflow_id: str, run_id: str) -> set[str]:
    """The workflow.patched ids a run recorded (its markers): which code paths it took."""
    history = await world.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    found = set()
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = e.marker_recorded_event_attributes.details
            if e.marker_recorded_event_attributes.marker_name == "core_patch":
                found.add(json.loads(details["patch-data"].payloads[0].data)["id"])
    return found


async def failed_tasks(world: World, workflow_id: str, run_id: str | None = None) -> list[str]:
    history = await world.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return [
        e.workflow_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def test_what_the_previous_release_started_finishes_under_this_code(
    world: World, previous_release: Path
) -> None:
    old = await start_previous_worker(world, previous_release, PEERSYNC_REQUIRE_APPROVAL="true")
    await world.registry_ready()
    registry = world.handle(registry_id("alice"))
    old_run = (await registry.describe()).run_id
    carol = await world.registry_row("carol")
    # As the previous release's `peersync update` did: the change started directly, an override to pin.
    change = "endpoint-change-alice-manual-carol-previous"
    await world.client.start_workflow(
        "EndpointChangeWorkflow",
        EndpointChangeRequest(validator="carol", endpoint=carol.effective, override=True),
        id=change,
        task_queue="peersync-alice",
    )
    await wait_phase(world, change, Phase.AWAITING_APPROVAL)
    await old.stop()

    await world.start_worker()  # changes it starts need no approval; the old change keeps its own

    async def moved_over() -> str | None:
        run = (await registry.describe()).run_id
        return run if run != old_run else None

    new_run = await eventually(moved_over, 30, "the previous release's registry to continue as new")
    assert "registry-one-writer" not in await patches(world, registry_id("alice"), old_run)

    async def one_writer() -> bool:  # its first workflow task may still be on its way
        return "registry-one-writer" in await patches(world, registry_id("alice"), new_run)

    await eventually(one_writer, 30, "the new registry run to take the one-writer path")
    await world.handle(change).signal("approve")
    result = await world.finished(change, EndpointChangeResult)
    assert result.phase == Phase.DONE, result
    assert (await world.registry_row("carol")).override == carol.effective  # pinned at its commit
    history = await registry.fetch_history()
    assert any(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == "share"
        for e in history.events
    ), "the change did not commit itself to the registry"

    # And the new registry run is the one writer: a chain move now starts its change there.
    bob = await world.edit_validator("bob", f"p2p={world.subnet}.102")
    moved = await world.finished(f"endpoint-change-alice-{world.operator('bob')}-{bob}", EndpointChangeResult)
    assert moved.phase == Phase.DONE, moved

    for workflow_id, run_id in [
        (registry_id("alice"), old_run),
        (registry_id("alice"), new_run),
        (change, None),
        (consumer_sync_id("alice", "alice-consumer-1"), None),
    ]:
        assert await failed_tasks(world, workflow_id, run_id) == [], (workflow_id, run_id)
