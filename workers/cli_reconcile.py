"""`peersync reconcile` and `peersync schedule ...`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from temporalio.client import ScheduleDescription, ScheduleHandle
from temporalio.service import RPCError, RPCStatusCode

from core.contracts import NEEDS_APPROVAL
from workers.cli_common import (
    JsonFlag,
    call,
    connect,
    errors_exit_with,
    fail,
    leave,
    require_worker,
    state,
)
from workers.cli_output import Output, OutputOption, chosen, is_data, print_data, print_table
from workers.schedule import apply_schedule, schedule_id
from workers.settings import Settings
from workers.views import human_duration
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import DriftRow, PeerDrift, ReconcileInput, ReconcileReport

schedule_app = typer.Typer(help="The periodic reconcile schedule of this cluster.", no_args_is_help=True)


def reconcile(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Report drift and repair nothing. Exits like `kubectl diff`: 0 no drift, 1 drift found, "
            "2 the check could not be made."
        ),
    ] = False,
    as_json: JsonFlag = False,
    output: OutputOption = None,
) -> None:
    """Compare every managed consumer with the chain now and repair what drifted; print the report.

    Exit status: 0 when every consumer is clean or was repaired, 1 when a repair failed. With --dry-run, as
    `kubectl diff`: 0 when nothing drifted, 1 when something did, 2 when the check could not be made."""
    if dry_run:  # exit 1 means "drift found" here: a refusal must not read as one
        errors_exit_with(DRY_RUN_ERROR)
    fmt = chosen(output, as_json)
    settings = state(ctx).settings()

    async def go() -> ReconcileReport:
        client = await connect(settings)
        await require_worker(client, settings)  # else the run waits forever (and stays Running)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        return await client.execute_workflow(
            ReconcileWorkflow.run,
            ReconcileInput(dry_run=dry_run),
            id=f"reconcile-{settings.cluster_id}-manual-{stamp}",
            task_queue=settings.task_queue,
            static_summary="manual reconcile" + (" (dry run)" if dry_run else ""),
        )

    try:
        report = call(go())
    except Exception as exc:  # unforeseen: in a dry run its traceback's exit 1 would read as "drift found"
        if not dry_run:
            raise
        fail(f"the drift check failed: {type(exc).__name__}: {exc}")
    if fmt in (Output.JSON, Output.YAML):
        print_data(report.model_dump(mode="json"), fmt)
    else:
        print_table(_table(report, settings.cluster_id, wide=fmt == Output.WIDE), fmt)
    leave(exit_code(report))


DRY_RUN_ERROR = 2


def exit_code(report: ReconcileReport) -> int:
    """A dry run: 1 when it found drift (`kubectl diff`); a repair: 1 when one failed."""
    if report.dry_run:
        return 1 if report.drifted else 0
    return 1 if report.failed else 0


def _table(report: ReconcileReport, cluster_id: str, wide: bool) -> Table:
    table = Table(title=f"reconcile of cluster {cluster_id}" + (" (dry run)" if report.dry_run else ""))
    columns = ("namespace", "chain", "state", "why", "peers") if wide else ("namespace", "state", "why")
    for col in columns:
        table.add_column(col, overflow="fold")
    for namespace, state_, why, row in final_rows(report):
        if wide:  # each differing peer on its own line, node id and operator address whole
            chain = row.consumer.chain_id if row.consumer else "-"
            table.add_row(namespace, chain, state_, why, "\n".join(_wide_peer(p) for p in row.peers))
        else:
            table.add_row(namespace, state_, why)
    return table


def _wide_peer(p: PeerDrift) -> str:
    who = f"{p.moniker or 'unknown validator'} ({p.operator_address or 'no validator derives this node id'})"
    if p.kind == "moved":
        return f"moved {who}: {p.applied} -> {p.want}"
    return f"{p.kind} {who}: {p.want if p.kind == 'missing' else p.applied}"


def final_rows(report: ReconcileReport) -> list[tuple[str, str, str, DriftRow]]:
    """(namespace, state, why, row): each namespace once, in its final state. The report lists a repaired
    namespace twice (`drifted`: what was found, then `repaired`/`failed`: what was done); a repair whose
    ConfigMap is written but whose restart waits for approval (PEERSYNC_REQUIRE_APPROVAL) restarted
    nothing, so it is `awaiting approval`, not `repaired` (the report lists it so; a report from an older
    worker listed it as repaired, with the reason saying so)."""
    done = {row.namespace for row in [*report.repaired, *report.awaiting_approval, *report.failed]}
    rows = [(row.namespace, "failed", row.reason or "", row) for row in report.failed]
    for row in [*report.awaiting_approval, *report.repaired]:
        rows.append(_awaiting(row) or (row.namespace, "repaired", row.reason or "", row))
    rows += [
        (row.namespace, "drifted", row.reason or "", row)
        for row in report.drifted
        if row.namespace not in done
    ]
    rows += [(row.namespace, "skipped", row.reason or "", row) for row in report.skipped]
    rows += [(row.namespace, "clean", row.reason or "", row) for row in report.clean]
    order = {"failed": 0, "awaiting approval": 1, "drifted": 2, "repaired": 3, "skipped": 4, "clean": 5}
    return sorted(rows, key=lambda r: order[r[1]])


def _awaiting(row: DriftRow) -> tuple[str, str, str, DriftRow] | None:
    if NEEDS_APPROVAL not in (row.reason or ""):
        return None
    found = (row.reason or "").partition(" -> ")[0]
    chain = row.consumer.chain_id if row.consumer else row.namespace
    return (
        row.namespace,
        "awaiting approval",
        f"{found}; the restart waits for approval (peersync sync --consumer {chain} --approve)",
        row,
    )


async def _schedule(settings: Settings) -> tuple[ScheduleHandle, ScheduleDescription]:
    """The cluster's schedule, described first: on a missing one, pause or delete would be refused with
    the scheduler's internals ("workflow execution already completed")."""
    sid = schedule_id(settings.cluster_id)
    handle = (await connect(settings)).get_schedule_handle(sid)
    try:
        return handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            fail(f"schedule {sid} not found (create it: peersync schedule apply)")
        raise


@schedule_app.command("apply")
def schedule_apply(ctx: typer.Context) -> None:
    """Create or update the schedule (every PEERSYNC_RECONCILE_EVERY, overlap skip)."""
    settings = state(ctx).settings()

    async def go() -> None:
        await apply_schedule(await connect(settings), settings)

    call(go())
    print(f"schedule {schedule_id(settings.cluster_id)}: every {human_duration(settings.reconcile_every)}")
    leave()


@schedule_app.command("describe")
def schedule_describe(ctx: typer.Context, as_json: JsonFlag = False, output: OutputOption = None) -> None:
    """Show the schedule: interval, paused or not, recent and next runs."""
    settings = state(ctx).settings()
    fmt = chosen(output, as_json)

    async def go() -> ScheduleDescription:
        _, desc = await _schedule(settings)
        return desc

    desc = call(go())
    if is_data(fmt):
        print_data(_describe_json(desc), fmt)
    else:
        print(_describe_text(desc))
    leave()


def _next_runs(desc: ScheduleDescription) -> list[str]:
    # A paused schedule starts nothing: the times it would run at are not its next runs.
    if desc.schedule.state.paused:
        return []
    return [t.isoformat() for t in desc.info.next_action_times[:3]]


def _describe_json(desc: ScheduleDescription) -> dict[str, object]:
    sched = desc.schedule
    return {
        "id": desc.id,
        "every": [str(i.every) for i in sched.spec.intervals],  # (scripts parse "0:05:00": kept as is)
        "paused": sched.state.paused,
        "note": sched.state.note,
        "overlap": sched.policy.overlap.name,
        "recent": [a.scheduled_at.isoformat() for a in desc.info.recent_actions],
        "next": _next_runs(desc),
    }


def _describe_text(desc: ScheduleDescription) -> str:
    sched = desc.schedule
    every = ", ".join(human_duration(i.every) for i in sched.spec.intervals) or "-"
    note = f" ({sched.state.note})" if sched.state.note else ""
    recent = ", ".join(a.scheduled_at.isoformat() for a in desc.info.recent_actions) or "none yet"
    lines = [f"id: {desc.id}", f"every {every}, overlap {sched.policy.overlap.name}"]
    if sched.state.paused:
        lines.append(f"state: paused{note}: no runs until `peersync schedule unpause`")
    else:
        lines.append(f"state: active{note}")
    lines.append(f"recent runs: {recent}")
    if not sched.state.paused:
        lines.append(f"next runs: {', '.join(_next_runs(desc)) or 'none scheduled'}")
    return "\n".join(lines)


def _toggle(ctx: typer.Context, pause: bool, note: str) -> None:
    settings = state(ctx).settings()

    async def go() -> None:
        handle, _ = await _schedule(settings)
        await (handle.pause(note=note) if pause else handle.unpause(note=note))

    call(go())
    print(f"schedule {schedule_id(settings.cluster_id)} {'paused' if pause else 'unpaused'}")
    leave()


@schedule_app.command("pause")
def schedule_pause(
    ctx: typer.Context, note: Annotated[str, typer.Option(help="Why.")] = "paused by the operator"
) -> None:
    """Pause the periodic reconcile."""
    _toggle(ctx, True, note)


@schedule_app.command("unpause")
def schedule_unpause(
    ctx: typer.Context, note: Annotated[str, typer.Option(help="Why.")] = "unpaused by the operator"
) -> None:
    """Resume the periodic reconcile."""
    _toggle(ctx, False, note)


@schedule_app.command("delete")
def schedule_delete(ctx: typer.Context) -> None:
    """Delete the schedule (the worker recreates it at its next start unless started with --no-schedule)."""
    settings = state(ctx).settings()

    async def go() -> None:
        handle, _ = await _schedule(settings)
        await handle.delete()

    call(go())
    print(f"schedule {schedule_id(settings.cluster_id)} deleted")
    leave()
