"""Asking a ConsumerSyncWorkflow for a sync and waiting for its `sync_done` answer, with an end.

Shared by EndpointChangeWorkflow and ReconcileWorkflow. The answer is a signal, so it can be missing: the
ConsumerSync was terminated mid-sync, or its reply was lost (a reset of the asker without its signals).
So the ask is repeated with the same request id after each interval of policies.SYNC_REPLY: a ConsumerSync
that already answered answers again, one that is still on it ignores the duplicate, and a missing one is
started anew by the ask itself (signal-with-start). After the total budget the wait gives up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts import SyncResult
    from workflows import policies


class NoReply(Exception):
    """The ConsumerSync never answered within the budget."""

    def __init__(self, namespace: str, asked: int, budget: policies.ReplyWait) -> None:
        hours = budget.total.total_seconds() / 3600
        super().__init__(
            f"no answer from the sync of {namespace} within {hours:g} h (asked {asked}x); "
            f"see its ConsumerSyncWorkflow and the worker"
        )


async def ask_until_answered(
    replies: dict[str, SyncResult],
    request_id: str,
    namespace: str,
    ask: Callable[[], Awaitable[None]],
    waiting: Callable[[int, datetime], None],
    budget: policies.ReplyWait = policies.SYNC_REPLY,
) -> SyncResult:
    """`ask()`, then wait for `replies[request_id]`, asking again after each interval; `waiting(asked, at)`
    reports each ask (for the UI). Raises NoReply after the budget, and whatever `ask` raises."""
    started = workflow.now()
    asked = 0
    while True:
        await ask()
        asked += 1
        waiting(asked, workflow.now())
        left = budget.total - (workflow.now() - started)
        try:
            # One timer per ask (cancelled when the answer comes first): no extra workflow task when it
            # does, which is the usual case.
            await workflow.wait_condition(
                lambda: request_id in replies,
                timeout=max(min(budget.interval(asked), left).total_seconds(), 1),
                timeout_summary=f"ask {namespace} again",
            )
            return replies[request_id]
        except TimeoutError:
            if workflow.now() - started >= budget.total:
                raise NoReply(namespace, asked, budget) from None
