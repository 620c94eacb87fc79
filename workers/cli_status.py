"""`peersync status`: the recent changes, one change's progress, or a live watch of it. With no worker to
answer queries, what Temporal itself recorded."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import BaseModel, Field
from rich.live import Live
from rich.table import Table
from rich.text import Text
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)

from core.contracts import (
    ConsumerStep,
    EndpointChangeResult,
    Phase,
    Progress,
)
from workers.cli_common import (
    JsonFlag,
    NoAnswer,
    ask,
    call,
    change_id,
    connect,
    console,
    fail,
    leave,
    state,
)
from workers.cli_control import endpoint_change
from workers.cli_output import Output, OutputOption, chosen, print_data, print_table
from workers.cli_status_list import changes_table, recent_changes
from workers.settings import Settings
from workers.views import change_events, progress_table
from workflows.failures import error_cause
from workflows.search_attributes import CONSUMER, PHASE, VALIDATOR

# ---- status of one change -------------------------------------------------------------------------------


class Recorded(BaseModel):
    """What Temporal keeps of a change by itself, without a worker (`status` when none answers): its
    status, the search attributes it set, its input and pending activities; not its live progress."""

    workflow_id: str
    status: str = Field(description="Temporal's: RUNNING, COMPLETED, FAILED, ...")
    phase: str | None = Field(description="the last phase the change indexed (PeersyncPhase)")
    validator: str | None = Field(description="as requested")
    endpoint: str | None = Field(description="as requested; None: the chain's")
    operator_address: str | None = Field(description="PeersyncValidator, once validated")
    consumers: list[str] = Field(description="chain ids (PeersyncConsumer), once discovered")
    started: str
    pending: list[str] = Field(description="activities in flight: type, attempt, last failure")
    failure: str | None = Field(None, description="why it failed, for a change that did not complete")


Shown = Progress | Recorded  # live progress or the final one (from the result), or what Temporal recorded


def _began(desc: WorkflowExecutionDescription) -> bool:
    return (
        desc.status == WorkflowExecutionStatus.RUNNING or desc.typed_search_attributes.get(PHASE) is not None
    )


async def _look(
    client: Client, handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription
) -> tuple[Shown, NoAnswer | None]:
    """The change as a worker tells it (its progress query), else (NoAnswer says why) as Temporal keeps
    it: the final progress rebuilt from its result once it completed, or what Temporal recorded."""
    if _began(desc):
        try:
            return await ask(client, handle, desc.task_queue, "progress", result_type=Progress), None
        except NoAnswer as exc:
            return await _recorded(handle, desc), exc
        except WorkflowQueryFailedError:
            if desc.status == WorkflowExecutionStatus.RUNNING:
                raise
    return await _recorded(handle, desc), None  # it ended; whatever its worker held is gone


async def _recorded(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription) -> Shown:
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        return _final(handle.id, await handle.result())
    failure = None
    if desc.status != WorkflowExecutionStatus.RUNNING:
        try:
            await handle.result()
        except WorkflowFailureError as exc:
            failure = _readable(error_cause(exc))
    request = await _request(handle)
    attrs = desc.typed_search_attributes
    return Recorded(
        workflow_id=handle.id,
        status=desc.status.name if desc.status else "?",
        phase=attrs.get(PHASE),
        validator=request.get("validator"),
        endpoint=request.get("endpoint"),
        operator_address=attrs.get(VALIDATOR),
        consumers=[c for c in (attrs.get(CONSUMER) or "").split(",") if c],
        started=desc.start_time.isoformat(timespec="seconds") if desc.start_time else "?",
        pending=[
            f"{a.activity_type.name} (attempt {a.attempt})"
            + (f": {a.last_failure.message}" if a.HasField("last_failure") else "")
            for a in desc.raw_description.pending_activities
            if desc.status == WorkflowExecutionStatus.RUNNING  # a closed one keeps its last list
        ],
        failure=failure,
    )


async def _request(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    """The change's input as it was started, as far as it reads (it may be malformed)."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        try:
            request = json.loads(payloads[0].data) if payloads else {}
        except ValueError:
            return {}
        return request if isinstance(request, dict) else {}
    return {}


def _final(workflow_id: str, result: EndpointChangeResult) -> Progress:
    """The last progress of a completed change, rebuilt from its result (rows as the workflow words them)."""
    failed = [r for r in result.consumers if r.error]
    return Progress(
        phase=result.phase,
        validator=result.moniker,
        endpoint=result.endpoint,
        reason=f"{len(failed)} consumer(s) failed" if failed else None,
        consumers=[
            ConsumerStep(
                namespace=r.consumer.namespace,
                chain_id=r.consumer.chain_id,
                step="done",
                state="failed"
                if r.error
                else ("restarted" if r.restarted else ("written" if r.changed else "unchanged")),
                detail=r.error or (r.rollout if r.restarted else r.outcome()),
                live=r.live,
            )
            for r in result.consumers
        ],
        skipped=result.skipped,
    )


PYDANTIC_DETAIL = re.compile(r" \[type=.*$")  # " [type=missing, input_value=..., input_type=dict]"


def _readable(reason: str) -> str:
    """A pydantic ValidationError's text on one line, without its doc links and echoed input:
    `invalid input: validator: Field required; ... (2 validation errors for EndpointChangeRequest)`."""
    lines = reason.removeprefix("ValidationError: ").splitlines()
    head = re.fullmatch(r"\d+ validation errors? for \w+", lines[0].strip()) if lines else None
    if head is None:
        return reason
    errors, loc = [], ""
    for line in lines[1:]:
        if not line.startswith(" "):
            loc = line.strip()
        elif not line.strip().startswith("For further information"):
            errors.append(f"{loc}: {PYDANTIC_DETAIL.sub('', line.strip())}")
    return f"invalid input: {'; '.join(errors)} ({head.group(0)})"


ENDED_EARLY = {
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "was terminated",
    WorkflowExecutionStatus.CANCELED: "was cancelled",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
}


async def _never_began(handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription) -> None:
    """Refuse a change that ended before its first phase (malformed input, terminated while validating):
    it has no progress to show, only why."""
    if _began(desc) or desc.status not in ENDED_EARLY:
        return
    recorded = await _recorded(handle, desc)
    reason = recorded.failure if isinstance(recorded, Recorded) else None
    fail(f"{handle.id} {ENDED_EARLY[desc.status]} before it began: {reason or 'no reason recorded'}")


def _recorded_table(r: Recorded) -> Table:
    title = f"{r.validator or '?'} → {r.endpoint or '(chain)'}: [bold]{r.phase or 'no phase recorded'}[/]"
    table = Table(title=title + " (as Temporal recorded it)", caption=r.workflow_id, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("status", r.status)
    table.add_row("phase", r.phase or "- (validating or discovering)")
    table.add_row("operator address", r.operator_address or "-")
    table.add_row("consumers", ", ".join(r.consumers) or "-")
    table.add_row("started", r.started)
    for activity in r.pending:
        table.add_row("in flight", activity)
    if r.failure:
        table.add_row("failure", r.failure)
    return table


def _render(workflow_id: str, shown: Shown) -> Table:
    return progress_table(workflow_id, shown) if isinstance(shown, Progress) else _recorded_table(shown)


def _not_live(missing: NoAnswer, shown: Shown) -> str:
    """The stderr line of a status shown without a worker."""
    if isinstance(shown, Progress):
        return f"{missing.what}: showing the change's result as Temporal recorded it"
    return (
        f"{missing.what}: showing what Temporal recorded (phase {shown.phase or '-'}, status {shown.status}); "
        f"start 'peersync worker' for cluster {missing.cluster} for live progress"
    )


def _phase(shown: Shown) -> Phase | None:
    if isinstance(shown, Progress):
        return shown.phase
    return Phase(shown.phase) if shown.phase in set(Phase) else None


async def _watch(settings: Settings, workflow_id: str) -> Phase | None:
    """Follow the change until it ends: one line per event as it happens (phase changes, each failed probe
    attempt with its reason and the deadline, an approval received, each consumer's step), under a live
    table on a terminal; the final table at the end. When no worker answers (none runs, or it died
    mid-watch), a line says so once and the watch goes on: the change goes on once a worker is back, and
    this ends when the change does (or at Ctrl-C)."""
    client = await connect(settings)
    handle, desc = await endpoint_change(client, workflow_id)
    await _never_began(handle, desc)
    last: Progress | None = None
    said_missing = False
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                shown, missing = await _look(client, handle, desc)
                running = desc.status == WorkflowExecutionStatus.RUNNING
                if isinstance(shown, Progress) and (missing is None or not running):
                    for line in change_events(last, shown):
                        live.console.print(Text(line), soft_wrap=True)  # one event, one line (grep-able)
                    last, said_missing = shown, False
                elif missing is not None and running and not said_missing:
                    live.console.print(
                        Text(f"({missing.what}: waiting for a worker to come back, Ctrl-C to stop)")
                    )
                    said_missing = True
                live.update(_render(workflow_id, last or shown))
                if not running:
                    return _phase(shown)
                await asyncio.sleep(0.5)
                desc = await handle.describe()
    finally:
        if not console.is_terminal:
            console.line()  # written to a file or pipe, Live's last render ends without a newline


async def stream_events(
    client: Client, handle: WorkflowHandle[Any, Any], emit: Callable[[str], None]
) -> None:
    """Emit the change's events (see `_watch`) until it ends, for `update --wait`. Without a worker to ask
    nothing is emitted until one answers; the caller's wait for the result goes on regardless."""
    last: Progress | None = None
    while True:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                for line in change_events(last, _final(handle.id, await handle.result())):
                    emit(line)
            return
        try:
            progress = await ask(client, handle, desc.task_queue, "progress", result_type=Progress)
        except (NoAnswer, WorkflowQueryFailedError):
            progress = None
        if progress is not None:
            for line in change_events(last, progress):
                emit(line)
            last = progress
        await asyncio.sleep(0.5)


def status(
    ctx: typer.Context,
    workflow_id: Annotated[
        str | None,
        typer.Argument(
            help="An endpoint change (its id or a unique prefix of it); omitted: the recent ones."
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Follow it until it ends, one line per event.")
    ] = False,
    phase: Annotated[
        Phase | None, typer.Option(help="List only the changes in this phase.", show_default=False)
    ] = None,
    validator: Annotated[
        str | None,
        typer.Option(
            help="List only the changes of this validator (operator address or moniker).", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="List at most this many changes (newest first).")] = 20,
    output: OutputOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Progress of an endpoint change (phase, probe attempts, one row per consumer), or the list of recent
    changes (short ids, monikers, old → new; `-o wide` for full ids).

    With no worker to answer, what Temporal recorded (status, last indexed phase, input, activities in
    flight; a finished change's result), with a line on stderr saying so: exit 0. A change that ended
    before its first phase (malformed input): why, on stderr, exit 1. With -w: exit 0 once it is done."""
    settings = state(ctx).settings()
    fmt = chosen(output, as_json)
    if workflow_id is None:
        if watch:
            fail("-w needs a workflow id (see `peersync status` for the recent ones)")
        rows = call(recent_changes(settings, phase, validator, limit))
        if fmt in (Output.JSON, Output.YAML):
            print_data([r.model_dump() for r in rows], fmt)
        else:
            print_table(changes_table(rows, settings.cluster_id, wide=fmt == Output.WIDE), fmt)
        leave()
    if phase is not None or validator is not None:
        fail("--phase and --validator filter the list: give them without a workflow id")
    workflow_id = change_id(settings, workflow_id)
    if watch and fmt in (None, Output.WIDE):
        try:
            phase_reached = call(_watch(settings, workflow_id))
        except KeyboardInterrupt:
            leave(130)
        leave(0 if phase_reached == Phase.DONE else 1)

    async def go() -> tuple[Shown, NoAnswer | None]:
        client = await connect(settings)
        handle, desc = await endpoint_change(client, workflow_id)
        await _never_began(handle, desc)
        return await _look(client, handle, desc)

    shown, missing = call(go())
    if missing is not None:
        print(f"peersync: {_not_live(missing, shown)}", file=sys.stderr)
    if fmt in (Output.JSON, Output.YAML):
        print_data(shown.model_dump(mode="json"), fmt)
    else:
        console.print(_render(workflow_id, shown))
    leave()
