"""Operator commands that talk to running workflows: update, sync, pause, resume, approve, cancel, status,
registry. Each refusal is one line on stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError
from rich.live import Live
from rich.table import Table
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.endpoint import EndpointError, parse_endpoint
from activities.kube_ops import Kube, api_client
from activities.policy import EndpointPolicy
from activities.temporal_calls import sync_now
from workers.cli_common import JsonFlag, call, console, fail, leave, state
from workers.plan import ChangePlan, ConsumerPlan, plan_change
from workers.settings import Settings
from workers.views import progress_table
from workers.worker import connect
from workflows.activity_contracts import OverrideInput
from workflows.contracts import (
    ApproveRequest,
    CancelRequest,
    ConsumerRef,
    EndpointChangeRequest,
    EndpointChangeResult,
    Phase,
    Progress,
    RegistryView,
    SyncRequest,
    SyncResult,
)
from workflows.endpoint_change import EndpointChangeWorkflow
from workflows.ids import registry_id
from workflows.registry import RegistryWorkflow
from workflows.search_attributes import PHASE, VALIDATOR

WorkflowId = Annotated[str, typer.Argument(help="Workflow id (see `peersync status`).")]
# The phases in which EndpointChangeWorkflow.approve acts; in any other it is ignored.
APPROVABLE = (Phase.BLOCKED, Phase.AWAITING_APPROVAL)
QUERY_TIMEOUT = timedelta(seconds=10)


def _run(ctx: typer.Context) -> Settings:
    return state(ctx).settings()


def registry(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The endpoint registry of this cluster: one row per validator."""
    settings = _run(ctx)

    async def go() -> list[RegistryView]:
        client = await connect(settings)
        return await client.get_workflow_handle(registry_id(settings.cluster_id)).query(
            RegistryWorkflow.table
        )

    rows = call(go())
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        leave()
    table = Table(title=f"registry of cluster {settings.cluster_id}")
    for col in ("moniker", "operator address", "endpoint", "status", "in effect", "height"):
        table.add_column(col, overflow="fold")
    for r in rows:
        status = (
            r.status.value
            + (f": {r.reason}" if r.reason else "")
            + (" (moniker collision)" if r.collision else "")
        )
        effect = (r.effective or "-") + (" (override)" if r.override else "")
        table.add_row(r.moniker, r.operator_address, r.endpoint or "-", status, effect, str(r.height))
    console.print(table)
    leave()


def update(
    ctx: typer.Context,
    validator: Annotated[str, typer.Option(help="Operator address or moniker.")],
    endpoint: Annotated[str | None, typer.Option(help="host[:port] to pin as an operator override.")] = None,
    clear: Annotated[bool, typer.Option(help="Clear the operator override of this validator.")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the change to finish and print its result.")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print the plan (consumers, old -> new peers, restarts) and change nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Process a validator's endpoint now: the chain's current one, or --endpoint as an override."""
    settings = _run(ctx)
    if clear and endpoint:
        fail("--clear and --endpoint exclude each other")
    try:
        request = EndpointChangeRequest(validator=validator, endpoint=endpoint, override=endpoint is not None)
        if endpoint is not None:
            # Refuse here what the workflow would refuse: nothing starts for an endpoint that cannot pass.
            parse_endpoint(endpoint, EndpointPolicy.from_setting(settings.endpoint_allow_cidrs))
    except ValidationError as exc:
        fail(f"invalid input: {exc.errors()[0]['msg']}")
    except EndpointError as exc:
        fail(f"refused: endpoint {endpoint!r}: {exc.reason}")

    if dry_run:
        if clear:
            fail("--dry-run shows a change; --clear has nothing to show")
        plan = call(_plan(settings, request))
        if as_json:
            print(plan.model_dump_json(indent=2))
        else:
            _print_plan(plan)
        leave()

    async def go() -> str:
        client = await connect(settings)
        if clear:
            view = await client.get_workflow_handle(registry_id(settings.cluster_id)).execute_update(
                RegistryWorkflow.set_override, OverrideInput(operator_address=validator, endpoint=None)
            )
            return f"override of {view.moniker} cleared; in effect: {view.effective}"
        # A manual change is a new request each time (unlike chain changes, keyed by height).
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        wf_id = f"endpoint-change-{settings.cluster_id}-manual-{validator}-{stamp}-{uuid.uuid4().hex[:6]}"
        handle = await client.start_workflow(
            EndpointChangeWorkflow.run,
            request,
            id=wf_id,
            task_queue=settings.task_queue,
            static_summary=f"manual: {validator} -> {endpoint or '(chain)'}",
        )
        if not wait:
            return f"started {wf_id}"
        result: EndpointChangeResult = await handle.result()
        return result.model_dump_json(indent=2)

    print(call(go()))
    leave()


async def _plan(settings: Settings, request: EndpointChangeRequest) -> ChangePlan:
    try:
        client = await connect(settings)
    except RuntimeError:
        client = None  # without Temporal the plan lacks only the registry's pins
    try:
        return await plan_change(settings, client, request)
    except ApplicationError as exc:
        fail(f"refused: {exc.message}")


def _restart_cell(c: ConsumerPlan) -> str:
    if c.live:
        return "yes, after a live dial" if c.restart else "no: live dial"
    return "yes" if c.restart else "no"


def _print_plan(plan: ChangePlan) -> None:
    console.print(
        f"[bold]{plan.moniker}[/] ({plan.validator}) -> [bold]{plan.endpoint}[/] (dry run: nothing changed)"
    )
    table = Table()
    for col in ("namespace", "chain", "peers now", "peers after", "restart"):
        table.add_column(col, overflow="fold")
    for c in plan.consumers:
        table.add_row(
            c.namespace,
            c.chain_id,
            "\n".join(c.old_peers),
            "\n".join(c.new_peers),
            _restart_cell(c),
        )
    for s in plan.skipped:
        table.add_row("-", s.chain_id, s.reason, "", "no")
    console.print(table)


def sync(
    ctx: typer.Context,
    consumer: Annotated[str, typer.Option(help="Consumer chain id (or its namespace) to sync now.")],
    approve: Annotated[
        bool, typer.Option(help="Approve a restart when PEERSYNC_REQUIRE_APPROVAL is on.")
    ] = False,
) -> None:
    """Recompute one consumer's peers from the chain and apply them (rollout only if they changed)."""
    settings = _run(ctx)
    kube = Kube(api_client(settings.kubeconfig), settings.cluster_id)
    managed, _ = kube.managed_namespaces()
    found = [ns for ns in managed if consumer in (ns.chain_id, ns.name)]
    if len(found) != 1:
        fail(f"no namespace labelled peersync.io/cluster={settings.cluster_id} runs consumer {consumer!r}")
    ns = found[0]
    ref = ConsumerRef(
        cluster_id=settings.cluster_id, namespace=ns.name, chain_id=ns.chain_id, consumer_id=ns.consumer_id
    )

    async def go() -> SyncResult:
        client = await connect(settings)
        request = SyncRequest(requested_by="cli", reason="peersync sync", approved=approve)
        return await sync_now(client, settings, ref, request)

    result = call(go())
    print(result.model_dump_json(indent=2))
    if result.error:
        fail(f"the sync of {ns.name} failed: {result.error}")
    leave()


def _signal(ctx: typer.Context, wf_id: str, name: str, arg: BaseModel | None = None) -> None:
    settings = _run(ctx)

    async def go() -> None:
        client: Client = await connect(settings)
        handle = client.get_workflow_handle(wf_id)
        await handle.describe()  # a missing workflow is a refusal, not a silent no-op
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
        handle = client.get_workflow_handle(workflow_id)
        desc = await handle.describe()  # a missing workflow is a refusal, not a silent no-op
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
    reason: Annotated[str, typer.Option(help="Why; shown in the UI.")] = "cancelled by the operator",
) -> None:
    """Cancel an endpoint change before it syncs consumers (refused once it is too late)."""
    settings = _run(ctx)

    async def go() -> str:
        client = await connect(settings)
        handle = client.get_workflow_handle(workflow_id)
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
    handle = client.get_workflow_handle(workflow_id)
    progress = await handle.query("progress", result_type=Progress)
    with Live(progress_table(workflow_id, progress), console=console, refresh_per_second=4) as live:
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            progress = await handle.query("progress", result_type=Progress)
            live.update(progress_table(workflow_id, progress))
            await asyncio.sleep(0.5)
        progress = await handle.query("progress", result_type=Progress)
        live.update(progress_table(workflow_id, progress))
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
        client = await connect(settings)
        return await client.get_workflow_handle(workflow_id).query("progress", result_type=Progress)

    progress = call(go())
    if as_json:
        print(progress.model_dump_json(indent=2))
    else:
        console.print(progress_table(workflow_id, progress))
    leave()
