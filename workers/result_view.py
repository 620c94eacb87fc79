"""The result table every `--wait` ends with (`update`, `update --clear`, `undo`) and `sync` prints: one row
per consumer, its peers before -> after and what happened (as `kubectl rollout status` ends with a verdict)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from core.contracts import EndpointChangeResult, SkippedConsumer, SyncResult


def change_result_table(workflow_id: str, result: EndpointChangeResult) -> Table:
    title = f"{escape(result.moniker)} -> {escape(result.endpoint)}: [bold]{result.phase.value}[/]"
    return _table(title, workflow_id, result.consumers, result.skipped)


def sync_result_table(result: SyncResult) -> Table:
    verdict = "failed" if result.error else "done"
    title = f"sync #{result.sync_number} of {result.consumer.namespace}: [bold]{verdict}[/]"
    return _table(title, None, [result], [])


def _table(title: str, caption: str | None, rows: list[SyncResult], skipped: list[SkippedConsumer]) -> Table:
    table = Table(title=title, caption=caption)
    for col in ("namespace", "chain", "peers before", "peers after", "result"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r.consumer.namespace,
            r.consumer.chain_id,
            "\n".join(r.old_peers) or "-",
            "\n".join(r.new_peers) or "-",
            escape(r.outcome()),
        )
    for s in skipped:
        table.add_row("-", s.chain_id, "", "", f"skipped: {escape(s.reason)}")
    if not rows and not skipped:
        table.add_row("-", "-", "", "", "no consumer of this cluster is affected")
    return table
