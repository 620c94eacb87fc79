"""Rich renderings shared by the CLI and the demo."""

from __future__ import annotations

from rich.table import Table

from workflows.contracts import Progress


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
