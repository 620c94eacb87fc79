"""Control of a running change: pause, resume, approve, cancel, and status. Each refusal is one line on
stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.live import Live
from rich.table import Table
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError

from workers.cli_common import (
    JsonFlag,
    call,
    connect,
    console,
    fail,
    has_worker,
    leave,
    no_worker,
    state,
)
from workers.settings import Settings
from workers.views import progress_table
from workflows.contracts import (
    ApproveRequest,
    CancelRequest,
    Phase,
    Progress,
)
from workflows.endpoint_change import EndpointChangeWorkflow
from workflows.search_attributes import PHASE, VALIDATOR

WorkflowId = Annotated[str, typer.Argument(help="Workflow id (see `peersync status`).")]
# The phases in which EndpointChangeWorkflow.approve acts; in any other it is ignored.
APPROVABLE = (Phase.BLOCKED, Phase.AWAITING_APPROVAL)
CHANGE_TYPE = "EndpointChangeWorkflow"  # the type name the change-control commands act on
QUERY_TIMEOUT = timedelta(seconds=10)


def _run(ctx: typer.Context) -> Settings:
    return state(ctx).settings()


async def _endpoint_change(
    client: Client, wf_id: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The change's handle and description; a missing workflow, or one of another type (which would ignore
    the signal or lack the query), is a refusal rather than a silent no-op or a traceback."""
    handle = client.get_workflow_handle(wf_id)
    desc = await handle.describe()
    if desc.workflow_type != CHANGE_TYPE:
        fail(f"{wf_id} is a {desc.workflow_type}, not an endpoint change")
    return handle, desc


def _ended(desc: WorkflowExecutionDescription) -> str | None:
    """None while the change runs; else how it ended: its final phase, or its Temporal status."""
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return None
    phase = desc.typed_search_attributes.get(PHASE)
    return phase or (desc.status.name.lower() if desc.status else "closed")


def _signal(ctx: typer.Context, wf_id: str, name: str, arg: BaseModel | None = None) -> None:
    settings = _run(ctx)

    async def go() -> None:
        client: Client = await connect(settings)
        handle, desc = await _endpoint_change(client, wf_id)
        ended = _ended(desc)
        if ended is not None:
            fail(f"{name} ignored: {wf_id} has ended ({ended})")
        await handle.signal(name, *([arg] if arg else []))

    call(go())
    print(f"{name} sent to {wf_id}")
    leave()


def pause(ctx: typer.Context, workflow_id: WorkflowId) -> None:
    """Hold an endpoint change at its next step boundary."""
    _signal(ctx, workflow_id, "pause")


def resume(ctx: typer.Context, workflow_id: WorkflowId) -> None:
    """Continue a paused endpoint change."""
    _signal(ctx, workflow_id, "resume")


def approve(ctx: typer.Context, workflow_id: WorkflowId) -> None:
    """Approve the restarts of a change (or force it past a failed probe). Refused unless the change is
    blocked or awaiting approval: in any other phase the workflow would ignore it."""
    settings = _run(ctx)

    async def go() -> Phase:
        client = await connect(settings)
        handle, desc = await _endpoint_change(client, workflow_id)
        if desc.status != WorkflowExecutionStatus.RUNNING:
            ended = desc.status.name.lower() if desc.status else "closed"
            fail(f"approve ignored: {workflow_id} has ended ({ended}); nothing awaits approval")
        try:
            progress = await handle.query("progress", result_type=Progress, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, RPCTimeoutOrCancelledError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            fail(f"cannot tell whether {workflow_id} awaits approval (no worker answered?): {reason}")
        if progress.phase not in APPROVABLE:
            fail(
                f"approve ignored: nothing awaits approval in phase {progress.phase.value} "
                f"(approve acts in phase {Phase.BLOCKED.value} or {Phase.AWAITING_APPROVAL.value})"
            )
        await handle.signal("approve", ApproveRequest())
        return progress.phase

    phase = call(go())
    effect = "forces it past the failed probe" if phase == Phase.BLOCKED else "lets its restarts go"
    print(f"approve sent to {workflow_id} ({phase.value}: {effect})")
    leave()


def cancel(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    # The workflow prefixes the reason with "cancelled by the operator: ", so the default must not repeat it.
    reason: Annotated[str, typer.Option(help="Why; shown in the UI.")] = "no reason given",
) -> None:
    """Cancel an endpoint change before it syncs consumers (refused once it is too late)."""
    settings = _run(ctx)

    async def go() -> str:
        client = await connect(settings)
        handle, desc = await _endpoint_change(client, workflow_id)
        ended = _ended(desc)
        if ended is not None:
            fail(f"refused: too late to cancel: the change is {ended}")
        if not await has_worker(client, desc.task_queue):
            fail(no_worker(desc.task_queue))  # the update would wait for one forever
        return await handle.execute_update(EndpointChangeWorkflow.cancel, CancelRequest(reason=reason))

    print(call(go()))
    leave()


class WorkflowRow(BaseModel):
    workflow_id: str
    status: str
    phase: str | None
    validator: str | None
    started: str


async def _recent(settings: Settings, limit: int = 20) -> list[WorkflowRow]:
    client = await connect(settings)
    query = f"WorkflowType = 'EndpointChangeWorkflow' AND PeersyncCluster = '{settings.cluster_id}'"
    rows = []
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        rows.append(
            WorkflowRow(
                workflow_id=wf.id,
                status=wf.status.name if wf.status else "?",
                phase=attrs.get(PHASE),
                validator=attrs.get(VALIDATOR),
                started=wf.start_time.isoformat(timespec="seconds"),
            )
        )
    return rows


async def _watch(settings: Settings, workflow_id: str) -> Progress:
    client = await connect(settings)
    handle, _ = await _endpoint_change(client, workflow_id)
    progress = await handle.query("progress", result_type=Progress)
    with Live(progress_table(workflow_id, progress), console=console, refresh_per_second=4) as live:
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            progress = await handle.query("progress", result_type=Progress)
            live.update(progress_table(workflow_id, progress))
            await asyncio.sleep(0.5)
        progress = await handle.query("progress", result_type=Progress)
        live.update(progress_table(workflow_id, progress))
    if not console.is_terminal:
        console.line()  # written to a file or pipe, Live's last render ends without a newline
    return progress


def status(
    ctx: typer.Context,
    workflow_id: Annotated[
        str | None, typer.Argument(help="An endpoint change; omitted: the recent ones.")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it live until it ends.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Progress of an endpoint change (phase and one row per consumer), or the list of recent changes."""
    settings = _run(ctx)
    if workflow_id is None and watch:
        fail("-w needs a workflow id (see `peersync status` for the recent ones)")
    if workflow_id is None:
        rows = call(_recent(settings))
        if as_json:
            print(json.dumps([r.model_dump() for r in rows], indent=2))
            leave()
        table = Table(title=f"endpoint changes of cluster {settings.cluster_id}")
        for col in ("workflow id", "status", "phase", "validator", "started"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r.workflow_id, r.status, r.phase or "", r.validator or "", r.started)
        console.print(table)
        leave()
    if watch and not as_json:
        progress = call(_watch(settings, workflow_id))
        leave(0 if progress.phase == Phase.DONE else 1)

    async def go() -> Progress:
        handle, _ = await _endpoint_change(await connect(settings), workflow_id)
        return await handle.query("progress", result_type=Progress)

    progress = call(go())
    if as_json:
        print(progress.model_dump_json(indent=2))
    else:
        console.print(progress_table(workflow_id, progress))
    leave()
