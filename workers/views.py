"""Rich renderings shared by the CLI and the demo, and the words the CLI uses for what a sync did."""

from __future__ import annotations

from datetime import timedelta

from rich.table import Table

from core.contracts import NEEDS_APPROVAL, NO_RESTART, Progress, SyncResult


def progress_table(workflow_id: str, progress: Progress) -> Table:
    """An endpoint change as the Temporal UI's details show it: phase, then one row per consumer."""
    title = f"{progress.validator} → {progress.endpoint}: [bold]{progress.phase.value}[/]"
    table = Table(
        title=title + (" (paused)" if progress.paused else ""), caption=progress.reason or workflow_id
    )
    for col in ("namespace", "chain", "step", "state", "detail"):
        table.add_column(col, overflow="fold")
    for c in progress.consumers:
        table.add_row(c.namespace, c.chain_id, c.step, c.state, c.detail or "")
    for s in progress.skipped:
        table.add_row("-", s.chain_id, "skipped", s.reason, "")
    return table


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
