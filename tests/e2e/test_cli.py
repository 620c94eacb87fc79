"""The command lines operators use, on the devnet: `temporal workflow start` of an EndpointChangeWorkflow
(end to end, and malformed input failing at once), and the `peersync` CLI's fixed interface (DESIGN
"Interfaces that are fixed"): `status --json` prints the Progress model, `registry --json` the registry
rows, every refusal is one line on stderr with a non-zero exit, and every command has `--help`.

Most tests share one devnet (module scope): they only read, or start changes that fail at once or change
nothing. The end-to-end start gets a devnet of its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from typer.testing import CliRunner

from core.contracts import EndpointChangeResult, EndpointStatus, Phase, Progress, SyncResult
from devnet.testbed import World, eventually
from tests.e2e.control_kit import (
    Node,
    endpoint_change_runs,
    one_line_refusal,
    snapshot,
    status,
    temporal,
    update,
    wait_phase,
    workflow_task_failures,
)
from workers.cli import app

shared = pytest.mark.asyncio(loop_scope="module")
DESIGN_COMMANDS = [
    "worker", "watch", "update", "sync", "pause", "resume", "cancel", "approve",
    "status", "registry", "reconcile", "schedule", "devnet",
]  # fmt: skip
REGISTRY_FIELDS = {"operator_address", "moniker", "endpoint", "status", "reason", "height"}


# ---- `temporal workflow start` ---------------------------------------------------------------------


async def test_temporal_workflow_start_runs_a_change_end_to_end(world: World) -> None:
    """The documented JSON input, through the `temporal` CLI: the change validates, probes, syncs and rolls
    out. bob's move is on the chain before the worker starts, so the registry takes it as its baseline and
    this workflow is the only one that acts on it."""
    new = f"{world.subnet}.23"
    await world.edit_validator("bob", f"p2p={new}")  # bob's nodes now listen at .23
    before = snapshot(world)
    await world.start_worker()
    await world.registry_ready()

    request = json.dumps({"validator": "bob", "endpoint": new})
    code, _, err = await temporal(
        world, "workflow", "start", "--type", "EndpointChangeWorkflow", "--task-queue", "peersync-alice",
        "--workflow-id", "cli-start", "--input", request,
    )  # fmt: skip
    assert code == 0, err
    result = await world.finished("cli-start", EndpointChangeResult)

    assert result.phase == Phase.DONE
    assert result.moniker == "bob" and result.endpoint == new
    assert sorted(c.consumer.namespace for c in result.consumers) == ["alice-consumer-1", "alice-consumer-2"]
    for ns in ("alice-consumer-1", "alice-consumer-2"):
        assert f"@{new}:" in world.configmap_text(ns)
        assert world.generation(ns) == before[ns][1] + 1
    assert snapshot(world)["alice-consumer-3"] == before["alice-consumer-3"]
    assert [wf_id for wf_id, _ in await endpoint_change_runs(world)] == ["cli-start"]


@shared
@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("not-a-string", {"validator": 5}, "validator"),
        ("unknown-field", {"validator": "bob", "endpont": "1.2.3.4"}, "endpont"),
        ("port-out-of-range", {"validator": "bob", "endpoint": "1.2.3.4:70000"}, "70000"),
    ],
)
async def test_malformed_input_fails_the_workflow_at_once(
    cli_world: World, name: str, payload: dict[str, object], reason: str
) -> None:
    """A bad model fails while decoding; a model-valid but bad endpoint fails in the validate activity.
    Either way: FAILED within seconds, never a Running workflow retrying a failing workflow task."""
    wf_id = f"malformed-{name}"
    code, out, err = await temporal(
        cli_world, "workflow", "start", "--type", "EndpointChangeWorkflow", "--task-queue", "peersync-alice",
        "--workflow-id", wf_id, "--input", json.dumps(payload),
    )  # fmt: skip
    assert code == 0, err
    closed = await eventually(lambda: _closed(cli_world, wf_id), timeout=10, what=f"{wf_id} to close")
    assert closed == WorkflowExecutionStatus.FAILED
    assert await workflow_task_failures(cli_world, wf_id) == []
    code, out, err = await temporal(cli_world, "workflow", "describe", "-w", wf_id, "-o", "json")
    assert code == 0, err
    failure = json.dumps(json.loads(out).get("closeEvent", json.loads(out)))
    assert reason in failure, failure


async def _closed(world: World, wf_id: str) -> WorkflowExecutionStatus | None:
    state = await status(world, wf_id)
    return None if state == WorkflowExecutionStatus.RUNNING else state


# ---- `peersync` read commands ----------------------------------------------------------------------


@shared
async def test_status_json_prints_the_progress_model(cli_world: World) -> None:
    wf_id = await update(cli_world, "--validator", "carol")  # the chain's own endpoint: nothing to change
    await cli_world.finished(wf_id, EndpointChangeResult)
    code, out, err = await cli_world.peersync("status", wf_id, "--json")
    assert code == 0, err
    progress = Progress.model_validate_json(out)
    assert progress.phase == Phase.DONE and progress.validator == "carol"
    assert progress.endpoint == f"{cli_world.subnet}.3"
    assert sorted(c.namespace for c in progress.consumers) == ["alice-consumer-1", "alice-consumer-2"]
    assert all(c.step == "done" and c.state == "unchanged" for c in progress.consumers)
    assert [s.chain_id for s in progress.skipped] == ["consumer-3"]


@shared
async def test_registry_json_rows_carry_the_design_fields(cli_world: World) -> None:
    code, out, err = await cli_world.peersync("registry", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(r["moniker"] for r in rows) == ["alice", "bob", "carol", "dave"]
    for row in rows:
        assert REGISTRY_FIELDS <= set(row), row
        assert row["operator_address"] == cli_world.operator(row["moniker"])
        assert row["status"] == EndpointStatus.VALID and row["reason"] is None
        assert isinstance(row["height"], int)
    bob = next(r for r in rows if r["moniker"] == "bob")
    assert bob["endpoint"] == f"{cli_world.subnet}.2"


# ---- refusals: one line on stderr, non-zero exit ----------------------------------------------------

REFUSALS = [
    pytest.param(["status", "no-such-change"], {}, "not found", id="status-unknown-id"),
    pytest.param(["pause", "no-such-change"], {}, "not found", id="pause-unknown-id"),
    pytest.param(["resume", "no-such-change"], {}, "not found", id="resume-unknown-id"),
    pytest.param(["approve", "no-such-change"], {}, "not found", id="approve-unknown-id"),
    pytest.param(["cancel", "no-such-change"], {}, "not found", id="cancel-unknown-id"),
    pytest.param(
        ["update", "--validator", "bob", "--endpoint", "10.0.0.5", "--clear"],
        {},
        "exclude",
        id="clear-with-endpoint",
    ),
    pytest.param(
        ["update", "--validator", "bob", "--endpoint", "10.0.0.5"],
        {},
        "10.0.0.5",
        id="private-endpoint-under-default-policy",
    ),
    pytest.param(
        ["update", "--validator", "bob", "--endpoint", "1.2.3.4:70000"],
        {},
        "70000",
        id="port-out-of-range",
    ),
    pytest.param(
        ["update", "--validator", "nobody"],
        {},
        "refused: no validator with operator address or moniker 'nobody'",
        id="unknown-validator",
    ),
    pytest.param(
        ["update", "--validator", "nobody", "--wait"],
        {},
        "refused: no validator with operator address or moniker 'nobody'",
        id="wait-on-an-unknown-validator",
    ),
    pytest.param(
        ["status", "no-such-change"],
        {"TEMPORAL_ADDRESS": "127.0.0.1:1"},
        "127.0.0.1:1",
        id="temporal-unreachable",
    ),
    pytest.param(
        ["status", "no-such-change"],
        {"PEERSYNC_CLUSTER_ID": "Not Valid"},
        "PEERSYNC_CLUSTER_ID",
        id="invalid-setting",
    ),
]


@shared
@pytest.mark.parametrize(("args", "env", "reason"), REFUSALS)
async def test_a_refusal_is_one_line_on_stderr_and_a_non_zero_exit(
    cli_world: World, args: list[str], env: dict[str, str], reason: str
) -> None:
    runs_before = await endpoint_change_runs(cli_world)
    code, _, err = await cli_world.peersync(*args, **env)
    one_line_refusal(code, err, reason)
    assert await endpoint_change_runs(cli_world) == runs_before  # refused up front = nothing started


@shared
async def test_the_same_update_twice_at_once_is_never_a_traceback(cli_world: World) -> None:
    """Two operators (or a double Enter) ask for the same manual change in the same second: each command
    either starts a change or refuses in one line."""
    runs = await asyncio.gather(*(cli_world.peersync("update", "--validator", "carol") for _ in range(2)))
    started = []
    for code, out, err in runs:
        if code == 0:
            match = re.search(r"started (\S+)", out)
            assert match, out
            started.append(match.group(1))
        else:
            one_line_refusal(code, err)
    assert started
    # The registry starts them one after the other: the newer supersedes the older (they change nothing:
    # carol did not move), and one ends done.
    phases = [(await cli_world.finished(wf_id, EndpointChangeResult)).phase for wf_id in started]
    assert set(phases) <= {Phase.DONE, Phase.SUPERSEDED} and Phase.DONE in phases, phases


# ---- --help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", DESIGN_COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and command in result.output


async def test_the_console_script_lists_every_command() -> None:
    script = Path(sys.executable).parent / "peersync"
    proc = await asyncio.create_subprocess_exec(
        str(script), "--help", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert not [c for c in DESIGN_COMMANDS if f"│ {c} " not in out.decode()], out.decode()


# ---- outcomes the workflow refuses or ignores are refusals of the command ----------------------------------


@shared
async def test_approve_of_a_finished_change_is_refused(cli_world: World) -> None:
    """The workflow ignores an approve outside blocked/awaiting-approval: the command used to say
    `approve sent` and exit 0 anyway."""
    wf_id = await update(cli_world, "--validator", "carol")  # changes nothing
    assert (await cli_world.finished(wf_id, EndpointChangeResult)).phase == Phase.DONE
    code, out, err = await cli_world.peersync("approve", wf_id)
    one_line_refusal(code, err, "approve ignored", "ended")
    assert "approve sent" not in out


async def test_approve_and_cancel_while_syncing_are_refused_with_the_reason_only(world: World) -> None:
    """A change whose last consumer is syncing can be neither approved (nothing awaits approval) nor
    cancelled (every consumer has been asked); each refusal says why in plain words (no `ValueError:` of the
    workflow's validator)."""
    await world.start_worker()
    await world.registry_ready()
    stall = {
        "type": "stall",
        "resource": "statefulsets",
        "namespace": "alice-consumer-2",
        "name": "consumer-2",
    }
    await world.kube_fault(stall)  # consumer-2's rollout makes no progress: the change stays syncing
    async with Node(f"{world.subnet}.22") as node:
        await node.up()
        wf_id = await update(world, "--validator", "bob", "--endpoint", f"{world.subnet}.22")
        await wait_phase(world, wf_id, Phase.SYNCING)

        async def last_consumer_asked() -> bool:  # consumers are asked in turn: consumer-2 is the last
            return all(c.step != "pending" for c in (await world.progress(wf_id)).consumers)

        await eventually(last_consumer_asked, what="consumer-2 to be asked")

        code, out, err = await world.peersync("approve", wf_id)
        line = one_line_refusal(code, err, "approve ignored: nothing awaits approval in phase syncing")
        assert "approve sent" not in out, out
        code, _, err = await world.peersync("cancel", wf_id)
        line = one_line_refusal(code, err)
        assert (
            line == "peersync: refused: too late to cancel: every consumer has already been asked to sync"
        ), line
        progress = await world.progress(wf_id)
        assert progress.phase == Phase.SYNCING and "approve ignored" not in (progress.reason or "")

        await world.handle(wf_id).cancel()
    world.kube().clear_faults()


async def test_sync_whose_result_carries_an_error_exits_non_zero(world: World) -> None:
    """The result is still printed (stdout), with its error as the one-line reason on stderr."""
    cm = world.kube().get("ConfigMap", "alice-consumer-2", "consumer-2-config")
    text = cm["data"]["init.sh"]
    start = text.index("persistent_peers=")
    cm["data"]["init.sh"] = text[:start] + 'persistent_peers="$PEERS"' + text[text.index("\n", start) :]
    world.kube().apply(cm)  # only a person can rewrite this: the sync fails at once
    await world.start_worker()
    await world.registry_ready()

    code, out, err = await world.peersync("sync", "--consumer", "consumer-2", "--json")
    result = SyncResult.model_validate_json(out)
    assert result.error and "cannot rewrite the peers" in result.error, result
    one_line_refusal(code, err, "sync of alice-consumer-2 failed", "cannot rewrite the peers")

    # A sync that works: exit 0.
    code, out, err = await world.peersync("sync", "--consumer", "consumer-1", "--json")
    assert code == 0 and SyncResult.model_validate_json(out).error is None, (out, err)
