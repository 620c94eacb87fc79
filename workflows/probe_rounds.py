"""The reachability gate run by the workflow itself, one attempt per activity (issue 13 item 3).

An activity retried by Temporal tells the workflow nothing until its whole budget is spent: `status` and the
UI would show only `probing` for five minutes. Here the workflow schedules each attempt (no server retries)
and waits out the backoff on its own timer, so after every attempt it knows the count, the last error and
the deadline, and shows them. The backoff and the budget are those of policies.PROBE (or the worker's
PEERSYNC_PROBE_BUDGET), from the workflow's clock: deterministic on replay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.defs import PeersyncActivities
    from core.contracts import ProbeStatus
    from workflows.activity_contracts import ProbeInput
    from workflows.failures import error_cause
    from workflows.policies import StepBudget


def backoff(budget: StepBudget, failed: int) -> timedelta:
    """The wait after the `failed`-th failed attempt: the budget's initial interval, doubling, capped."""
    return min(budget.initial * 2 ** min(max(failed - 1, 0), 20), budget.maximum)


async def probe_in_rounds(
    probe: ProbeInput,
    summary: str,
    budget: StepBudget,
    status: ProbeStatus,
    stopping: Callable[[], bool],
    shown: Callable[[], None],
) -> str | None:
    """Attempt after attempt until the endpoint answers (None), the deadline passes (the last error), or
    `stopping()` (None; the caller honours the cancel). `status` holds the attempts already made and the
    deadline; it is updated in place and `shown()` after each change so the query and the UI follow."""
    while True:
        left = status.deadline - workflow.now()
        wait = min(backoff(budget, status.attempts), left)
        if wait > timedelta(0):
            status.next_attempt = workflow.now() + wait
            shown()
            if await _stopped_within(stopping, wait):
                return None
        left = status.deadline - workflow.now()
        if left <= timedelta(0):
            status.next_attempt = None
            shown()
            return status.last_error or "no attempt answered before the deadline"
        status.next_attempt = None
        shown()
        attempt = workflow.start_activity_method(
            PeersyncActivities.probe_endpoint,
            probe,
            summary=f"{summary} (attempt {status.attempts + 1})",
            start_to_close_timeout=min(budget.attempt, left),
            # Bounded by the deadline even when no worker picks the attempt up.
            schedule_to_close_timeout=left,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        # A cancel must not wait for an attempt (nothing is written yet).
        await workflow.wait_condition(lambda a=attempt: a.done() or stopping())  # type: ignore[misc]
        if not attempt.done():
            attempt.cancel()
            return None
        status.attempts += 1
        try:
            await attempt
        except ActivityError as exc:
            status.last_error = error_cause(exc)
            continue
        status.passed = True
        shown()
        return None


async def _stopped_within(stopping: Callable[[], bool], wait: timedelta) -> bool:
    try:
        await workflow.wait_condition(stopping, timeout=wait, timeout_summary="next probe attempt")
    except TimeoutError:
        return False
    return True
