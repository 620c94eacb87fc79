"""Control of a running change: pause, resume, approve, cancel, and status. Each refusal is one line on
stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError

from core.contracts import (
    FINAL_PHASES,
    ApproveRequest,
    CancelRequest,
    EndpointChangeRequest,
    EndpointChangeResult,
    Phase,
    Progress,
    RegistryView,
)
from core.ids import registry_id
from workers.cli_common import (
    NoAnswer,
    ask,
    call,
    change_id,
    connect,
    fail,
    has_worker,
    leave,
    no_worker,
    state,
)
from workers.settings import Settings
from workflows.endpoint_change import EndpointChangeWorkflow
from workflows.registry import RegistryWorkflow
from workflows.search_attributes import PHASE, VALIDATOR

WorkflowId = Annotated[
    str, typer.Argument(help="Workflow id, or a unique prefix of it (see `peersync status`).")
]
# The phases in which EndpointChangeWorkflow.approve acts; in any other it is ignored.
APPROVABLE = (Phase.BLOCKED, Phase.AWAITING_APPROVAL)
CHANGE_TYPE = "EndpointChangeWorkflow"  # the type name the change-control commands act on


async def endpoint_change(
    client: Client, wf_id: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The change's handle and description; a missing workflow, or one of another type (which would ignore
    the signal or lack the query), is a refusal rather than a silent no-op or a traceback."""
    handle = client.get_workflow_handle(wf_id, result_type=EndpointChangeResult)
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
    settings = state(ctx).settings()
    wf_id = change_id(settings, wf_id)  # a unique prefix names it too

    async def go() -> None:
        client: Client = await connect(settings)
        handle, desc = await endpoint_change(client, wf_id)
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


async def _newer_change(
    client: Client, settings: Settings, desc: WorkflowExecutionDescription, workflow_id: str
) -> tuple[str, str] | None:
    """(moniker, id) of the validator's current change when the registry holds a newer one than this."""
    validator = desc.typed_search_attributes.get(VALIDATOR)
    if validator is None:
        return None
    registry = client.get_workflow_handle(registry_id(settings.cluster_id))
    try:
        reg = await registry.describe()
        rows: list[RegistryView] = await ask(client, registry, reg.task_queue, RegistryWorkflow.table)
    except (RPCError, NoAnswer):  # no registry, or none answers: the change's own commit check still holds
        return None
    row = next((r for r in rows if r.operator_address == validator), None)
    if row is None or row.change is None or row.change == workflow_id:
        return None
    return row.moniker, row.change


def approve(ctx: typer.Context, workflow_id: WorkflowId) -> None:
    """Approve the restarts of a change (or force it past a failed probe). Refused unless the change is
    blocked or awaiting approval: in any other phase the workflow would ignore it."""
    settings = state(ctx).settings()
    workflow_id = change_id(settings, workflow_id)  # a unique prefix names it too

    async def go() -> tuple[Progress, Progress | None]:
        client = await connect(settings)
        handle, desc = await endpoint_change(client, workflow_id)
        newer = await _newer_change(client, settings, desc, workflow_id)
        if newer is not None:  # approving a stale change must not bring back what a newer one replaced
            fail(
                f"refused: {workflow_id} is not the current change of {newer[0]}: {newer[1]} is; approve that one"
            )
        if desc.status != WorkflowExecutionStatus.RUNNING:
            ended = desc.status.name.lower() if desc.status else "closed"
            fail(f"approve ignored: {workflow_id} has ended ({ended}); nothing awaits approval")
        try:
            progress = await ask(client, handle, desc.task_queue, "progress", result_type=Progress)
        except NoAnswer as exc:
            fail(f"cannot tell whether {workflow_id} awaits approval: {exc}")
        if progress.phase == Phase.APPROVED:
            return progress, None  # received before: said so, nothing sent again
        if progress.phase not in APPROVABLE:
            fail(
                f"approve ignored: nothing awaits approval in phase {progress.phase.value} "
                f"(approve acts in phase {Phase.BLOCKED.value} or {Phase.AWAITING_APPROVAL.value})"
            )
        await handle.signal("approve", ApproveRequest())
        return progress, await _received(client, handle, desc.task_queue, progress.phase)

    before, after = call(go())
    print(approval_said(workflow_id, before, after))
    leave()


async def _received(
    client: Client, handle: WorkflowHandle[Any, Any], task_queue: str, before: Phase
) -> Progress | None:
    """The change's progress once it shows the approval (it left `before`); None if it does not within a
    few seconds (a busy worker): the signal is recorded and acts when the worker gets to it."""
    for _ in range(20):
        try:
            progress: Progress = await ask(client, handle, task_queue, "progress", result_type=Progress)
        except (NoAnswer, RPCError):
            return None
        if progress.phase != before:
            return progress
        await asyncio.sleep(0.25)
    return None


def approval_said(workflow_id: str, before: Progress, after: Progress | None) -> str:
    """What `approve` answers: that the change received the approval (or not yet), and what happens next."""
    follow = f"follow it: peersync status {workflow_id} --watch"
    if after is None and before.phase == Phase.APPROVED:
        after, head = before, f"{workflow_id} was already approved"
    elif after is None:
        return (
            f"approve sent to {workflow_id}; its worker has not shown it yet (still {before.phase.value}): "
            f"it acts when the worker gets to it; {follow}"
        )
    else:
        forced = " (forced past the failed probe)" if before.phase == Phase.BLOCKED else ""
        head = f"approval received by {workflow_id}{forced}"
    if after.paused:
        return f"{head}; the change is paused: it goes on after `peersync resume {workflow_id}`"
    if after.phase == Phase.AWAITING_APPROVAL:  # a forced probe is not approval of the restarts
        return f"{head}; its restarts need an approval too: peersync approve {workflow_id}"
    if after.phase in FINAL_PHASES:
        return f"{head}; the change has ended: {after.phase.value}" + (
            f" ({after.reason})" if after.reason else ""
        )
    if after.phase in (Phase.APPROVED, Phase.SYNCING):
        return f"{head}; its consumers now sync one at a time; {follow}"
    return f"{head}; now {after.phase.value}; {follow}"


async def _left_in_place(handle: WorkflowHandle[Any, Any]) -> str:
    """What a cancel leaves in place: said before the change stops, from its own input."""
    request = await _start_input(handle)
    if request is None or request.source == "manual":
        return "nothing is pinned: an operator's change pins its endpoint only when it starts syncing"
    return (
        "the registry will hold the endpoint in effect before this move (status `held` in `peersync "
        "registry`): reconcile keeps it until the chain moves again or `peersync hold release --validator "
        f"{request.validator}`"
    )


async def _start_input(handle: WorkflowHandle[Any, Any]) -> EndpointChangeRequest | None:
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        if payloads:
            return EndpointChangeRequest.model_validate_json(payloads[0].data)
        break
    return None


def cancel(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    # The workflow prefixes the reason with "cancelled by the operator: ", so the default must not repeat it.
    reason: Annotated[str, typer.Option(help="Why; shown in the UI.")] = "no reason given",
) -> None:
    """Cancel an endpoint change at its next step, or before its next consumer once syncing (refused once
    every consumer has been asked)."""
    settings = state(ctx).settings()
    workflow_id = change_id(settings, workflow_id)  # a unique prefix names it too

    async def go() -> str:
        client = await connect(settings)
        handle, desc = await endpoint_change(client, workflow_id)
        ended = _ended(desc)
        if ended is not None:
            fail(f"refused: too late to cancel: the change is {ended}")
        if not await has_worker(client, desc.task_queue):
            fail(no_worker(desc.task_queue))  # the update would wait for one forever
        said = await handle.execute_update(EndpointChangeWorkflow.cancel, CancelRequest(reason=reason))
        return f"{said}\n{await _left_in_place(handle)}"

    print(call(go()))
    leave()
