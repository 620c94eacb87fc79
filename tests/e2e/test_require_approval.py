"""Approval is explicit (issue 13 item 4): `update --require-approval` and `sync --require-approval` ask for
approval of that change whatever the worker's PEERSYNC_REQUIRE_APPROVAL (the devnet's is off), and
`peersync devnet --require-approval` turns the setting on for the whole devnet."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from core.contracts import NEEDS_APPROVAL, EndpointChangeResult, Phase, SyncResult
from devnet.files import READY
from devnet.testbed import World, eventually
from tests.e2e.control_kit import Node, peersync_ok, snapshot, update, wait_phase

C1 = "alice-consumer-1"


async def test_update_require_approval_waits_for_approval_though_the_worker_does_not_ask(
    world: World,
) -> None:
    await world.start_worker()  # the devnet's PEERSYNC_REQUIRE_APPROVAL=false
    await world.registry_ready()
    before = snapshot(world)
    async with Node(f"{world.subnet}.61") as node:
        await node.up()
        wf_id = await update(world, "--validator", "bob", "--endpoint", node.host, "--require-approval")
        progress = await wait_phase(world, wf_id, Phase.AWAITING_APPROVAL)
        assert progress.awaiting_approval, progress
        assert snapshot(world) == before  # nothing written, nothing restarted before the approval
        assert (await world.registry_row("bob")).override is None  # nor pinned

        await peersync_ok(world, "approve", wf_id)
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE, result
    assert any(r.restarted for r in result.consumers), result
    assert f"@{node.host}:" in world.configmap_text(C1)

    # Without the flag the same worker does not ask: the flag, not a setting, asked above.
    async with Node(f"{world.subnet}.62") as node:
        await node.up()
        wf_id = await update(world, "--validator", "bob", "--endpoint", node.host)
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE, result


async def test_sync_require_approval_writes_but_restarts_only_once_approved(world: World) -> None:
    await world.start_worker()  # PEERSYNC_REQUIRE_APPROVAL=false
    await world.registry_ready()
    await world.first_drift_check_done()
    world.drop_first_peer(C1)  # drift: a peer list to write ...
    world.forget_rollout(C1)  # ... and pods that run an older peer set: a restart to make
    generation = world.generation(C1)

    code, out, err = await world.peersync("sync", "--consumer", "consumer-1", "--require-approval", "--json")
    assert code == 0, err
    asked = SyncResult.model_validate_json(out)
    assert asked.changed and not asked.restarted and asked.rollout == NEEDS_APPROVAL, asked
    assert "peersync sync --consumer consumer-1 --approve" in err, err
    assert world.generation(C1) == generation  # written, not restarted

    # The ask did not change the sync's standing setting: a later sync with --approve restarts; the table
    # (no --json) says so.
    out = await peersync_ok(world, "sync", "--consumer", "consumer-1", "--approve", COLUMNS="200")
    assert "restarted" in out and "peers before" in out, out
    assert world.generation(C1) > generation


async def test_devnet_require_approval_turns_the_setting_on(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.cli", "devnet", "--state-dir", str(state),
        "--free-ports", "--headless", "--require-approval",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:

        async def ready() -> bool:
            assert proc.returncode is None, "the devnet exited before it was ready"
            return (state / READY).exists()

        await eventually(ready, 90, "the devnet to be ready")
        assert "export PEERSYNC_REQUIRE_APPROVAL=true\n" in (state / "env").read_text()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
