"""Rich renderings shared by the CLI and the demo, and the words the CLI uses for what a sync did."""

from __future__ import annotations

from datetime import timedelta

from rich.table import Table

from core.contracts import FINAL_PHASES, NEEDS_APPROVAL, NO_RESTART, Phase, ProbeStatus, Progress, SyncResult
from workflows.markdown import clock, probe_summary


def progress_table(workflow_id: str, progress: Progress) -> Table:
    """An endpoint change as the Temporal UI's details show it: phase, then one row per consumer."""
    title = f"{progress.validator} → {progress.endpoint}: [bold]{progress.phase.value}[/]"
    caption = progress.reason or workflow_id
    if progress.probe is not None and progress.phase in (Phase.PROBING, Phase.BLOCKED):
        caption = f"{probe_summary(progress.probe)}\n{caption}"  # live feedback while it retries
    table = Table(title=title + (" (paused)" if progress.paused else ""), caption=caption)
    for col in ("namespace", "chain", "step", "state", "detail"):
        table.add_column(col, overflow="fold")
    for c in progress.consumers:
        table.add_row(c.namespace, c.chain_id, c.step, c.state, c.detail or "")
    for s in progress.skipped:
        table.add_row("-", s.chain_id, "skipped", s.reason, "")
    return table


WAITING = (Phase.BLOCKED, Phase.AWAITING_APPROVAL)


def change_events(before: Progress | None, after: Progress) -> list[str]:
    """What happened between two looks at a change, one line per event, as `status -w` and `update --wait`
    stream them: phase changes, each failed probe attempt with its reason and the deadline, an approval
    received, a pause, each consumer's step. `before` None: the first look (its phase and probe)."""
    # The probe's attempts first: they happened before the phase they end in (blocked, syncing).
    events = _probe_events(before.probe if before else None, after)
    if before is None or before.phase != after.phase:
        if before is not None and before.phase in WAITING and after.phase not in (*WAITING, *FINAL_PHASES):
            forced = " (forced past the failed probe)" if before.phase == Phase.BLOCKED else ""
            events.append(f"approval received{forced}")
        events.append(f"phase {after.phase.value}" + (f": {after.reason}" if after.reason else ""))
    elif after.reason and after.reason != before.reason:
        events.append(after.reason)  # e.g. "approve ignored: ..."
    if before is not None and before.paused != after.paused:
        events.append("paused (at the next step boundary)" if after.paused else "resumed")
    old = {c.namespace: c for c in before.consumers} if before else {}
    for c in after.consumers:
        was = old.get(c.namespace)
        if was is None or (was.step, was.state, was.detail) != (c.step, c.state, c.detail):
            if was is None and c.step == "pending":
                continue  # discovered, not yet asked: the phase line says enough
            events.append(f"{c.namespace} ({c.chain_id}): {c.state}" + (f": {c.detail}" if c.detail else ""))
    return events


def _probe_events(before: ProbeStatus | None, after: Progress) -> list[str]:
    probe = after.probe
    if probe is None:
        return []
    made = before.attempts if before else 0
    if probe.passed and not (before and before.passed):
        return [f"probe passed at attempt {probe.attempts}"]
    if probe.attempts <= made or probe.passed:
        return []
    which = f"{probe.attempts}" if probe.attempts == made + 1 or made == 0 else f"{made + 1}-{probe.attempts}"
    line = f"probe attempt {which} failed: {probe.last_error or 'no reason given'}"
    return [f"{line} (deadline {clock(probe.deadline)})"]


def shown_sync_result(result: SyncResult) -> SyncResult:
    """The result as `peersync sync` prints it. When nothing was restarted, the workflow's `rollout` is the
    message of a wait that only confirmed the pods already run this peer set ("successfully rolled out after
    0.0s"), which reads as a restart: say what happened instead."""
    if result.restarted or result.rollout in (None, NEEDS_APPROVAL):
        return result
    return result.model_copy(update={"rollout": NO_RESTART})


def human_duration(every: timedelta) -> str:
    """5m, 1h30m, 45s: as PEERSYNC_RECONCILE_EVERY is written, not Python's 0:05:00."""
    seconds = int(every.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
