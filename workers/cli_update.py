"""`peersync update`: a change by hand (an endpoint override, or the chain's endpoint again), its dry run
and `--clear`. Each refusal is one line on stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, NoReturn

import typer
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.chain_rest import ChainError, ChainRest
from activities.chain_view import validator_records
from activities.validation import ChangeRefused, validated_endpoint
from core.contracts import (
    ChangeAsk,
    EndpointChangeRequest,
    EndpointChangeResult,
    Phase,
    RegistryView,
)
from core.endpoint import EndpointError, parse_endpoint
from core.ids import registry_id
from core.policy import EndpointPolicy
from core.validator_names import UnknownValidatorError, resolve_validator
from workers.cli_common import (
    KUBE_UNREACHABLE,
    JsonFlag,
    call,
    chain_failure,
    connect,
    console,
    fail,
    has_worker,
    kube_failure,
    leave,
    no_worker,
    require_worker,
    state,
)
from workers.cli_ops import registry_rows
from workers.cli_output import Output, OutputOption, chosen, is_data, print_model
from workers.cli_status import stream_events
from workers.plan import ChangePlan, ConsumerPlan, plan_change
from workers.result_view import change_result_table
from workers.settings import Settings
from workers.worker import connect as connect_client
from workflows.activity_contracts import OverrideInput
from workflows.failures import error_cause
from workflows.registry import RegistryWorkflow

# How long `update --clear` looks for the change the registry starts at its next (nudged) refresh.
CLEARED_CHANGE_WAIT_SECONDS = 15.0


ValidatorOption = Annotated[str, typer.Option(help="Operator address or moniker.")]
WaitFlag = Annotated[bool, typer.Option(help="Wait for the change to finish and print its result.")]
DryRunFlag = Annotated[
    bool, typer.Option(help="Print the plan (consumers, old -> new peers, restarts) and change nothing.")
]
YesFlag = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")
]
ApprovalFlag = Annotated[
    bool,
    typer.Option(
        help="Ask for approval before any restart of this change, whatever the worker's "
        "PEERSYNC_REQUIRE_APPROVAL (then: peersync approve ID)."
    ),
]


def update(
    ctx: typer.Context,
    validator: ValidatorOption,
    endpoint: Annotated[str | None, typer.Option(help="host[:port] to pin as an operator override.")] = None,
    clear: Annotated[bool, typer.Option(help="Clear the operator override of this validator.")] = False,
    wait: WaitFlag = False,
    dry_run: DryRunFlag = False,
    require_approval: ApprovalFlag = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    output: OutputOption = None,
) -> None:
    """Process a validator's endpoint now: the chain's current one, or --endpoint as an override (its plan
    is shown and confirmed first)."""
    settings = state(ctx).settings()
    fmt = chosen(output, as_json)
    if clear and endpoint:
        fail("--clear and --endpoint exclude each other")
    if clear and require_approval:
        fail(
            "--require-approval asks for approval of a change started here; --clear's change is the registry's"
        )
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
        show_plan(call(fetch_plan(settings, request)), fmt, dry_run=True)
        leave()
    if clear:
        message, cleared = call(_clear_override(settings, validator))
        print(message, file=sys.stderr if is_data(fmt) and wait else sys.stdout, flush=True)
        if wait and cleared is not None:
            finish(settings, cleared, fmt)
        leave()
    # Refuse here what the workflow would refuse at its first step (an unknown validator): nothing starts.
    call(validate_request(settings, request))
    if endpoint is not None:  # an override restarts validators' nodes: shown and confirmed first
        confirm(settings, request, yes, fmt, "update --endpoint")
    ask = ChangeAsk(
        validator=validator,
        endpoint=endpoint,
        override=endpoint is not None,
        require_approval=require_approval,
    )
    start_change(settings, ask, wait, fmt)


def start_change(settings: Settings, ask: ChangeAsk, wait: bool, fmt: Output | None) -> NoReturn:
    """Ask the registry to start the change; print its id, and with `wait` its result table (or JSON)."""

    async def go() -> str:
        client = await connect(settings)
        if not await has_worker(client, settings.task_queue):
            fail(no_worker(settings.task_queue))  # the registry, which starts the change, would never answer
        # The registry starts the change (it is the one writer of intent): one new change per request, and
        # any older change of this validator still running is told it is superseded.
        try:
            wf_id = await client.get_workflow_handle(registry_id(settings.cluster_id)).execute_update(
                RegistryWorkflow.request_change, ask
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            fail(f"no registry-{settings.cluster_id} in Temporal: start a worker (it starts the registry)")
        except WorkflowUpdateFailedError as exc:
            fail(f"refused: {error_cause(exc)}")
        return str(wf_id)

    wf_id = call(go())
    # The id first: the wait can be long (probing, awaiting approval) and the id is what acts on it.
    print(f"started {wf_id}", file=sys.stderr if is_data(fmt) and wait else sys.stdout, flush=True)
    if ask.require_approval:
        print(f"it waits for your approval before any restart: peersync approve {wf_id}", file=sys.stderr)
    if wait:
        finish(settings, wf_id, fmt)
    leave()


def finish(settings: Settings, wf_id: str, fmt: Output | None) -> NoReturn:
    """Wait for the change and end with its result: the table (every `--wait` does), or the JSON."""

    async def go() -> EndpointChangeResult:
        client = await connect(settings)
        handle = client.get_workflow_handle(wf_id, result_type=EndpointChangeResult)
        # Event lines while it runs (probe attempts, phases, approval, consumers), as `status -w` prints them.
        await stream_events(
            client, handle, lambda line: print(line, file=sys.stderr if is_data(fmt) else sys.stdout)
        )
        result: EndpointChangeResult = await handle.result()
        return result

    result = call(go())
    if is_data(fmt):
        print_model(result, fmt)
    else:
        console.print(change_result_table(wf_id, result))
    leave(1 if result.phase == Phase.FAILED else 0)  # a failed consumer: non-zero, as kubectl rollout status


def confirm(
    settings: Settings, request: EndpointChangeRequest, yes: bool, fmt: Output | None, what: str
) -> None:
    """An override restarts validators' nodes: show the plan and ask on a terminal. `--yes` skips both (a
    script knows what it asks); without a terminal and without `--yes`, refuse: nobody could answer."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"refused: {what} restarts validators' nodes: confirm on a terminal, or pass --yes")
    show_plan(call(fetch_plan(settings, request)), fmt, dry_run=False)
    if not typer.confirm("Apply this change?", default=False, err=is_data(fmt)):
        fail("not confirmed: nothing changed")


async def validate_request(settings: Settings, request: EndpointChangeRequest) -> None:
    """The workflow's own first step (validate_change's pure check), run here: same reads, same refusals."""
    policy = EndpointPolicy.from_setting(settings.endpoint_allow_cidrs)
    try:
        async with ChainRest(settings.chain_rest_url) as chain:
            records = await validator_records(chain, policy, settings.bech32_prefix)
        validated_endpoint(records, request, policy)
    except ChangeRefused as exc:
        fail(f"refused: {exc.message}")
    except (ChainError, ValidationError) as exc:
        chain_failure(settings, exc)


async def _clear_override(settings: Settings, validator: str) -> tuple[str, str | None]:
    """What the clear did, and the change it started back to the endpoint now in effect (None: none)."""
    client = await connect(settings)
    await require_worker(client, settings)  # the registry's update waits for a worker
    before = row_of(await registry_rows(client, settings), validator)
    if before is not None and before.override is None:
        if before.change is not None and await _running(client, before.change):
            # An operator's change not yet synced may still pin an override: the clear supersedes it.
            await client.get_workflow_handle(registry_id(settings.cluster_id)).execute_update(
                RegistryWorkflow.set_override, OverrideInput(operator_address=validator, endpoint=None)
            )
            return (
                f"{before.moniker} had no override; in effect: {before.effective or '-'}; {before.change} "
                "(still running) is superseded if it is an operator's change"
            ), None
        return f"{before.moniker} had no override; in effect: {before.effective or '-'}", None
    started = await _change_ids(client, settings, before.operator_address if before else validator)
    view = await client.get_workflow_handle(registry_id(settings.cluster_id)).execute_update(
        RegistryWorkflow.set_override, OverrideInput(operator_address=validator, endpoint=None)
    )
    cleared = f"override of {view.moniker} cleared; in effect: {view.effective or '-'}"
    if before is None or view.effective == before.effective:
        return f"{cleared} (unchanged: no change to start)", None
    wf_id = await _new_cleared_change(client, settings, view.operator_address, started)
    if wf_id is None:
        return f"{cleared}; the registry starts the change to it at its next refresh", None
    return f"{cleared}\nstarted {wf_id}", wf_id


async def _running(client: Client, workflow_id: str) -> bool:
    desc = await client.get_workflow_handle(workflow_id).describe()
    return desc.status == WorkflowExecutionStatus.RUNNING


def row_of(rows: list[RegistryView], validator: str) -> RegistryView | None:
    """The registry's row as its set_override resolves it: operator address, else a unique moniker."""
    try:
        return resolve_validator(rows, validator, lambda r: r.operator_address, lambda r: r.moniker)
    except UnknownValidatorError:
        return None  # the update's validator refuses with the reason


async def _change_ids(client: Client, settings: Settings, operator_address: str) -> set[str]:
    query = (
        f"WorkflowType = 'EndpointChangeWorkflow' AND PeersyncValidator = '{operator_address}' "
        f"AND PeersyncCluster = '{settings.cluster_id}'"
    )
    return {wf.id async for wf in client.list_workflows(query)}


async def _new_cleared_change(
    client: Client, settings: Settings, operator_address: str, known: set[str]
) -> str | None:
    """The change the registry starts for a cleared override (its id holds a sequence number only the
    registry knows): the new `...-override-cleared-N` run of this validator, once visibility lists it."""
    deadline = asyncio.get_running_loop().time() + CLEARED_CHANGE_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        new = await _change_ids(client, settings, operator_address) - known
        found = sorted(i for i in new if "-override-cleared-" in i)
        if found:
            return found[-1]
        await asyncio.sleep(0.5)
    return None


async def fetch_plan(settings: Settings, request: EndpointChangeRequest) -> ChangePlan:
    try:
        client: Client | None = await connect_client(settings)
    except RuntimeError:
        client = None  # without Temporal the plan lacks only the registry's pins
    try:
        return await plan_change(settings, client, request)
    except ChangeRefused as exc:
        fail(f"refused: {exc.message}")
    except (ChainError, ValidationError) as exc:
        chain_failure(settings, exc)
    except (ApiException, *KUBE_UNREACHABLE) as exc:  # listing the managed namespaces failed
        kube_failure(exc, settings)


def _restart_cell(c: ConsumerPlan) -> str:
    if c.restart and c.refused:
        return f"refused: {escape(c.refused)}"  # nothing would be restarted: the sync would fail with this
    if c.live:
        cell = "yes, after a live dial" if c.restart else "no: live dial"
    else:
        cell = "yes" if c.restart else "no"
    # Equal peer lists do not explain a restart: say what does.
    return f"{cell}: {c.why}" if c.why and (c.restart or c.live) else cell


def show_plan(plan: ChangePlan, fmt: Output | None, dry_run: bool) -> None:
    """The plan as JSON or YAML (stdout for a dry run; stderr before a confirmation, stdout being the
    result's) or as the table, then one WARNING line per other validator already at that endpoint."""
    if is_data(fmt):
        print_model(plan, fmt, sys.stdout if dry_run else sys.stderr)
        return
    _print_plan(plan, dry_run)
    for line in plan.warnings:
        console.print(f"[bold red]WARNING[/]: {escape(line)}")


def _print_plan(plan: ChangePlan, dry_run: bool) -> None:
    note = " (dry run: nothing changed)" if dry_run else ""
    console.print(f"[bold]{escape(plan.moniker)}[/] ({plan.validator}) -> [bold]{plan.endpoint}[/]{note}")
    table = Table()
    for col in ("namespace", "chain", "peers now", "peers after", "restart"):
        table.add_column(col, overflow="fold")
    for c in plan.consumers:
        table.add_row(
            c.namespace,
            c.chain_id,
            "\n".join([*c.old_peers, *(f"{escape(entry)} (operator's)" for entry in c.kept)]),
            "\n".join([*c.new_peers, *(f"{escape(entry)} (operator's, kept)" for entry in c.kept)]),
            _restart_cell(c),
        )
    for s in plan.skipped:
        namespace, why = _skipped_where(s.reason)
        table.add_row(namespace, s.chain_id, why, "", "no")
    console.print(table)


def _skipped_where(reason: str) -> tuple[str, str]:
    """(namespace, why): a namespace that could not be read is named in the reason ("namespace X: why"),
    as reconcile --dry-run names it in its own column."""
    head, sep, why = reason.partition(": ")
    if sep and head.startswith("namespace ") and " " not in head.removeprefix("namespace "):
        return head.removeprefix("namespace "), f"skipped: {why}"
    return "-", f"skipped: {reason}"
