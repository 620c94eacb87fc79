"""The `peersync` CLI when something around it is wrong or surprising, on the devnet (real processes, no
mocks): a namespace it may not read, no usable cluster, a provider chain that does not answer, a cluster id
no worker serves, a workflow id of the wrong type, a missing schedule. Each is one specific line on stderr
and changes nothing; and what a sync or reconcile did is worded from what was done. With the worker down,
`status` shows what Temporal recorded (at once, not after a query's timeout) and `registry` refuses at once;
`status -w` outlives a worker that dies mid-watch.

Most tests share one devnet (module scope) and put back what they change.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from temporalio.client import WorkflowExecutionStatus

from activities.drift import ROLLOUT_ONLY_DRIFT
from core.contracts import NO_RESTART, EndpointChangeResult, Phase, SyncResult
from devnet import shipped_rbac
from devnet.ports import free_port
from devnet.testbed import World, eventually
from tests.e2e.control_kit import (
    Node,
    endpoint_change_runs,
    one_line_refusal,
    status,
    temporal,
    update,
    wait_phase,
)
from workers.cli_common import QUERY_TIMEOUT

shared = pytest.mark.asyncio(loop_scope="module")
C1, C2 = "alice-consumer-1", "alice-consumer-2"
WIDE = {"COLUMNS": "400"}  # rich tables on one line per row, so a test can read them


def _stale_rolled_hash(world: World, namespace: str) -> None:
    """The ConfigMap no longer records that its pods were rolled onto its peers (the pod template still
    says they were): a repair has nothing to write and nothing to restart."""
    kube = world.kube()
    notes = kube.get("Namespace", "", namespace)["metadata"]["annotations"]
    cm = kube.get("ConfigMap", namespace, notes["peersync.io/configmap"])
    cm["metadata"]["annotations"]["peersync.io/rolled-hash"] = "0" * 16
    kube.apply(cm)


def _table_row(out: str, namespace: str) -> str:
    return next(line for line in out.splitlines() if f" {namespace} " in line)


# ---- 1: the cluster ------------------------------------------------------------------------------------


@shared
async def test_a_namespace_it_may_not_read_is_a_skipped_row_of_the_dry_run(cli_world: World) -> None:
    """Without its RoleBinding in alice-consumer-2 every read there is a 403: the plan skips that namespace
    with the apiserver's reason (as `reconcile --dry-run` does) and still plans the others."""
    kube = cli_world.kube()
    assert kube.delete("RoleBinding", C2, "peersync-consumer")
    try:
        code, out, err = await cli_world.peersync("update", "--validator", "bob", "--dry-run", "--json")
        assert code == 0, err
        plan = json.loads(out)
        assert [c["namespace"] for c in plan["consumers"]] == [C1]
        [skipped] = [s for s in plan["skipped"] if s["chain_id"] == "consumer-2"]
        assert skipped["reason"].startswith(f"namespace {C2}: HTTP 403: "), skipped
        assert "forbidden" in skipped["reason"], skipped

        code, out, err = await cli_world.peersync("update", "--validator", "bob", "--dry-run", **WIDE)
        assert code == 0, err
        assert "skipped: HTTP 403" in _table_row(out, C2), out

        code, out, err = await cli_world.peersync("reconcile", "--dry-run", "--json")
        assert code == 0, err
        [row] = [r for r in json.loads(out)["skipped"] if r["namespace"] == C2]
        assert row["reason"].startswith("HTTP 403: "), row  # the same formatting, without the namespace
    finally:
        kube.apply(shipped_rbac.consumer_binding(C2))


@pytest.fixture(scope="module")
def unreachable_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: gone, user: {token: x}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: gone}}]\n"
    )
    return path


@shared
@pytest.mark.parametrize(
    "args", [["update", "--validator", "bob", "--dry-run"], ["sync", "--consumer", "consumer-1"]]
)
@pytest.mark.parametrize("kubeconfig", ["missing", "unreachable"])
async def test_no_usable_cluster_is_one_line(
    cli_world: World, unreachable_kubeconfig: Path, args: list[str], kubeconfig: str
) -> None:
    path = "/nonexistent" if kubeconfig == "missing" else str(unreachable_kubeconfig)
    code, out, err = await cli_world.peersync(*args, KUBECONFIG=path)
    line = one_line_refusal(code, err, "peersync: cannot reach Kubernetes: ")
    assert (path if kubeconfig == "missing" else "127.0.0.1:1") in line, line
    assert out == ""


# ---- 2: the provider chain -----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def html_server() -> AsyncIterator[str]:
    """A URL that answers, but not as a chain's REST gateway does (a proxy's HTML page)."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@shared
@pytest.mark.parametrize("url", ["refused", "html"])
@pytest.mark.parametrize("dry_run", [True, False])
async def test_a_chain_read_failure_names_the_chain_not_temporal(
    cli_world: World, html_server: str, url: str, dry_run: bool
) -> None:
    rest = "http://127.0.0.1:1" if url == "refused" else html_server
    before = await endpoint_change_runs(cli_world)
    args = ["update", "--validator", "bob", *(["--dry-run"] if dry_run else [])]
    code, _, err = await cli_world.peersync(*args, PEERSYNC_CHAIN_REST_URL=rest)
    line = one_line_refusal(code, err, f"peersync: cannot read the provider chain at {rest}: ")
    assert "Temporal" not in line, line
    assert await endpoint_change_runs(cli_world) == before


# ---- 3: a cluster no worker serves ---------------------------------------------------------------------


@shared
async def test_commands_that_wait_refuse_when_no_worker_polls_the_cluster(cli_world: World) -> None:
    zed = {"PEERSYNC_CLUSTER_ID": "zed"}
    refusal = "no worker polls task queue peersync-zed: start 'peersync worker' for cluster zed"
    # `update` asks the registry, which only a worker runs: refused with or without --wait, nothing starts.
    for args in (
        ["reconcile", "--dry-run"],
        ["update", "--validator", "bob", "--wait"],
        ["update", "--validator", "bob"],
    ):
        code, _, err = await cli_world.peersync(*args, **zed)
        one_line_refusal(code, err, refusal)
    assert not [wf.id async for wf in cli_world.client.list_workflows("PeersyncCluster = 'zed'")]
    reconciles = [wf.id async for wf in cli_world.client.list_workflows("WorkflowType = 'ReconcileWorkflow'")]
    assert not [i for i in reconciles if i.startswith("reconcile-zed")], reconciles

    code, _, err = await cli_world.peersync("registry", **zed)
    one_line_refusal(code, err, "no registry for cluster zed yet: has a 'peersync worker' for it ever run?")


# ---- 4, 5: update --------------------------------------------------------------------------------------


@shared
async def test_update_wait_prints_the_id_before_it_waits(cli_world: World) -> None:
    code, out, err = await cli_world.peersync("update", "--validator", "carol", "--wait")
    assert code == 0, err
    first, _, rest = out.partition("\n")
    assert re.fullmatch(r"started endpoint-change-alice-manual-\S+", first), out
    assert ": done" in rest and "peers before" in rest, out  # it ends with the result table

    code, out, err = await cli_world.peersync("update", "--validator", "carol", "--wait", "--json")
    assert code == 0, err
    # stderr: the id first, then the live event lines (issue 13 item 3); stdout: the JSON alone.
    assert re.match(r"started endpoint-change-alice-manual-\S+\n", err), err
    assert EndpointChangeResult.model_validate_json(out).phase == Phase.DONE  # stdout: the JSON alone


@shared
async def test_clear_without_an_override_says_so(cli_world: World) -> None:
    code, out, err = await cli_world.peersync("update", "--validator", "dave", "--clear")
    assert code == 0, err
    assert out.startswith("dave had no override"), out


async def test_clear_prints_the_change_it_starts(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    pinned = f"{world.subnet}.30"
    async with Node(pinned, ("consumer-1", "consumer-2")) as node:
        await node.up()
        wf_id = await update(world, "--validator", "bob", "--endpoint", pinned)
        assert (await world.finished(wf_id, EndpointChangeResult)).phase == Phase.DONE

        code, out, err = await world.peersync("update", "--validator", "bob", "--clear")
        assert code == 0, err
        assert out.startswith(f"override of bob cleared; in effect: {world.subnet}.2"), out
        match = re.search(r"^started (\S+-override-cleared-\d+)$", out, re.MULTILINE)
        assert match, out
        result = await world.finished(match.group(1), EndpointChangeResult)
        assert result.phase == Phase.DONE and result.endpoint == f"{world.subnet}.2", result


# ---- 6, 10: the schedule -------------------------------------------------------------------------------


@shared
async def test_schedule_commands_on_a_missing_schedule_say_not_found(cli_world: World) -> None:
    """The worker runs with --no-schedule: there is none until `schedule apply`."""
    for command in ("pause", "unpause", "delete", "describe"):
        code, _, err = await cli_world.peersync("schedule", command)
        one_line_refusal(code, err, "schedule reconcile-alice not found")


@shared
async def test_schedule_describe_reads_as_settings_are_written(cli_world: World) -> None:
    code, out, err = await cli_world.peersync("schedule", "apply")
    assert code == 0 and out == "schedule reconcile-alice: every 5m\n", (out, err)
    try:
        code, out, err = await cli_world.peersync("schedule", "describe")
        assert code == 0, err
        assert "every 5m, overlap SKIP" in out and "[" not in out, out
        assert "state: active" in out and "next runs: " in out, out

        code, _, err = await cli_world.peersync("schedule", "pause")
        assert code == 0, err
        code, out, err = await cli_world.peersync("schedule", "describe")
        assert "state: paused (paused by the operator)" in out and "next runs" not in out, out
        code, out, err = await cli_world.peersync("schedule", "describe", "--json")
        info = json.loads(out)
        assert info["paused"] and info["next"] == [] and info["every"] == ["0:05:00"], info
    finally:
        code, _, err = await cli_world.peersync("schedule", "delete")
        assert code == 0, err


# ---- 7, 8: change control on the wrong workflow, or too late ------------------------------------------


@shared
@pytest.mark.parametrize("command", ["status", "pause", "resume", "approve", "cancel"])
@pytest.mark.parametrize(
    ("wf_id", "kind"),
    [("registry-alice", "RegistryWorkflow"), ("rollout-slots-alice", "RolloutSlotsWorkflow")],
)
async def test_change_control_refuses_a_workflow_that_is_not_a_change(
    cli_world: World, command: str, wf_id: str, kind: str
) -> None:
    code, out, err = await cli_world.peersync(command, wf_id)
    line = one_line_refusal(code, err)
    assert line == f"peersync: {wf_id} is a {kind}, not an endpoint change", line
    assert "sent" not in out


@shared
async def test_status_of_a_consumer_sync_is_refused_in_one_line(cli_world: World) -> None:
    code, _, err = await cli_world.peersync("sync", "--consumer", "consumer-1")
    assert code == 0, err
    wf_id = f"consumer-sync-alice-{C1}"
    code, _, err = await cli_world.peersync("status", wf_id)
    line = one_line_refusal(code, err)
    assert line == f"peersync: {wf_id} is a ConsumerSyncWorkflow, not an endpoint change", line


@shared
async def test_cancel_of_a_finished_change_is_too_late(cli_world: World) -> None:
    wf_id = await update(cli_world, "--validator", "carol")
    assert (await cli_world.finished(wf_id, EndpointChangeResult)).phase == Phase.DONE
    code, _, err = await cli_world.peersync("cancel", wf_id)
    line = one_line_refusal(code, err)
    assert line == "peersync: refused: too late to cancel: the change is done", line
    for signal in ("pause", "resume"):
        code, _out, err = await cli_world.peersync(signal, wf_id)
        one_line_refusal(code, err, f"{signal} ignored", "has ended (done)")


@shared
async def test_cancel_without_a_reason_does_not_repeat_itself(cli_world: World) -> None:
    """Nothing answers at .40: the change keeps probing, cancellable, and changes nothing."""
    wf_id = await update(cli_world, "--validator", "bob", "--endpoint", f"{cli_world.subnet}.40")
    await wait_phase(cli_world, wf_id, Phase.PROBING, Phase.BLOCKED)
    code, _out, err = await cli_world.peersync("cancel", wf_id)
    assert code == 0, err
    progress = await wait_phase(cli_world, wf_id, Phase.CANCELLED)
    assert progress.reason == "cancelled by the operator: no reason given", progress.reason


# ---- 9, 10: what a sync or a reconcile did, and why a dry run restarts ----------------------------------


@shared
async def test_a_restart_is_explained_and_outcomes_say_what_was_done(cli_world: World) -> None:
    """consumer-1's ConfigMap forgets that its pods run its peers (the pod template still says so); nothing
    needs writing or restarting. The dry run says why it would act with equal peer lists; `sync` and
    `reconcile` say the same thing every time: no restart was needed. A real one says restarted."""
    generation = cli_world.generation(C1)
    _stale_rolled_hash(cli_world, C1)

    code, out, err = await cli_world.peersync("update", "--validator", "bob", "--dry-run", "--json")
    assert code == 0, err
    [plan] = [c for c in json.loads(out)["consumers"] if c["namespace"] == C1]
    assert plan["old_peers"] == plan["new_peers"] and plan["restart"], plan
    assert plan["why"] == ROLLOUT_ONLY_DRIFT, plan
    code, out, err = await cli_world.peersync("update", "--validator", "bob", "--dry-run", **WIDE)
    assert f"yes: {ROLLOUT_ONLY_DRIFT}" in _table_row(out, C1), out

    code, out, err = await cli_world.peersync("sync", "--consumer", "consumer-1", "--json")
    assert code == 0, err
    result = SyncResult.model_validate_json(out)
    assert not result.restarted and result.rollout == NO_RESTART, result
    assert cli_world.generation(C1) == generation

    _stale_rolled_hash(cli_world, C1)
    cli_world.forget_rollout(C2)  # the pods of consumer-2 really run an older peer set
    code, out, err = await cli_world.peersync("reconcile", **WIDE)
    assert code == 0, (out, err)
    assert f"repaired │ {ROLLOUT_ONLY_DRIFT} -> {NO_RESTART}" in _table_row(out, C1), out
    assert f"repaired │ {ROLLOUT_ONLY_DRIFT} -> restarted" in _table_row(out, C2), out
    assert "successfully rolled out" not in out, out
    assert cli_world.generation(C1) == generation


# ---- 10: status ----------------------------------------------------------------------------------------


@shared
async def test_status_watch_needs_an_id_and_ends_its_output_with_a_newline(cli_world: World) -> None:
    code, _, err = await cli_world.peersync("status", "-w")
    one_line_refusal(code, err, "-w needs a workflow id")

    wf_id = await update(cli_world, "--validator", "carol")
    assert (await cli_world.finished(wf_id, EndpointChangeResult)).phase == Phase.DONE
    code, out, err = await cli_world.peersync("status", wf_id, "-w")
    assert code == 0, err
    assert out.endswith("\n") and wf_id in out, repr(out[-200:])


@shared
async def test_status_of_a_change_started_with_malformed_input_says_why_it_failed(cli_world: World) -> None:
    """`temporal workflow start` with a misspelt field: the change fails before its first phase, and no
    worker can answer its query (it never initialised); status says that it failed, and why."""
    wf_id = "malformed-input"
    code, _, err = await temporal(
        cli_world, "workflow", "start", "--type", "EndpointChangeWorkflow", "--task-queue", "peersync-alice",
        "--workflow-id", wf_id, "--input", '{"validatorr": "bob"}',
    )  # fmt: skip
    assert code == 0, err
    await eventually(lambda: _closed(cli_world, wf_id), 30, f"{wf_id} to fail")
    assert await status(cli_world, wf_id) == WorkflowExecutionStatus.FAILED
    for args in ([], ["-w"], ["--json"]):
        code, out, err = await cli_world.peersync("status", wf_id, *args)
        line = one_line_refusal(code, err)
        assert line == (
            f"peersync: {wf_id} failed before it began: invalid input: validator: Field required; "
            "validatorr: Extra inputs are not permitted (2 validation errors for EndpointChangeRequest)"
        ), line
        assert out == ""


async def _closed(world: World, wf_id: str) -> bool:
    return await world.exists(wf_id) and await status(world, wf_id) != WorkflowExecutionStatus.RUNNING


# ---- the worker is down --------------------------------------------------------------------------------


async def _timed(world: World, *args: str) -> tuple[int, str, str, float]:
    began = time.monotonic()
    code, out, err = await world.peersync(*args, **WIDE)
    return code, out, err, time.monotonic() - began


async def test_without_a_worker_status_shows_what_temporal_recorded_and_registry_refuses(
    world: World,
) -> None:
    """A query needs a worker: with it stopped, nothing waits for one. `status` answers from what Temporal
    keeps (a running change: its status, last phase, input and activity in flight; a finished one: its
    result), says so in one line on stderr and exits 0; `registry` refuses in one line."""
    worker = await world.start_worker()
    await world.registry_ready()
    done = await update(world, "--validator", "carol")
    assert (await world.finished(done, EndpointChangeResult)).phase == Phase.DONE
    probing = await update(world, "--validator", "bob", "--endpoint", f"{world.subnet}.40")  # nothing there
    await wait_phase(world, probing, Phase.PROBING, Phase.BLOCKED)
    await worker.stop()

    code, out, err, took = await _timed(world, "status", probing)
    assert code == 0, err
    assert took < QUERY_TIMEOUT.total_seconds(), took  # it asked no query (the stopped worker is listed)
    [line] = err.splitlines()
    assert re.fullmatch(
        r"peersync: no worker polls task queue peersync-alice: showing what Temporal recorded "
        r"\(phase (probing|blocked), status RUNNING\); start 'peersync worker' for cluster alice "
        r"for live progress",
        line,
    ), line
    # As recorded: the registry started it for bob's operator address.
    assert f"{world.operator('bob')} → {world.subnet}.40: " in out and "(as Temporal recorded it)" in out, out
    assert "RUNNING" in out and "consumer-1, consumer-2" in out, out

    code, out, err, _ = await _timed(world, "status", probing, "--json")
    assert code == 0, err
    recorded = json.loads(out)
    assert recorded["status"] == "RUNNING" and recorded["phase"] in ("probing", "blocked"), recorded
    assert (recorded["validator"], recorded["endpoint"]) == (world.operator("bob"), f"{world.subnet}.40"), (
        recorded
    )
    assert recorded["operator_address"] == world.operator("bob"), recorded

    code, out, err, took = await _timed(world, "status", done)
    assert code == 0 and took < QUERY_TIMEOUT.total_seconds(), (err, took)
    assert err == (
        "peersync: no worker polls task queue peersync-alice: showing the change's result as Temporal "
        "recorded it\n"
    ), err
    assert f"carol → {world.subnet}.3: done" in out and "alice-consumer-1" in out, out

    code, out, err, took = await _timed(world, "registry")
    line = one_line_refusal(code, err)
    assert (
        line
        == "peersync: no worker polls task queue peersync-alice: start 'peersync worker' for cluster alice"
    )
    assert took < QUERY_TIMEOUT.total_seconds() and out == "", took


async def test_status_watch_outlives_a_worker_that_dies_mid_watch(world: World) -> None:
    """The worker is SIGKILLed while `status -w` follows a probing change: the watch neither dies nor
    blames Temporal; it waits for a worker, and once one is back and the change is done, it exits 0 with
    the final table and nothing on stderr."""
    pinned = f"{world.subnet}.30"
    worker = await world.start_worker()
    await world.registry_ready()
    async with Node(pinned, ("consumer-1", "consumer-2")) as node:
        wf_id = await update(world, "--validator", "bob", "--endpoint", pinned)
        await wait_phase(world, wf_id, Phase.PROBING, Phase.BLOCKED)
        watch = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.cli", "status", wf_id, "-w",
            env={**os.environ, **world.env(**WIDE)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.sleep(2)  # the watch shows live progress (its renders only reach a pipe at the end)
            await world.kill_worker(worker)
            # Longer than a query's timeout: the watch has asked the dead worker at least once.
            await asyncio.sleep(QUERY_TIMEOUT.total_seconds() + 3)
            assert watch.returncode is None, await watch.communicate()

            await node.up()
            await world.start_worker()
            out, err = await asyncio.wait_for(watch.communicate(), 120)
        finally:
            if watch.returncode is None:
                watch.kill()
                await watch.wait()
    assert (watch.returncode, err.decode()) == (0, ""), (out.decode(), err.decode())
    text = out.decode()
    assert text.endswith("\n") and f"bob → {pinned}: done" in text, text
