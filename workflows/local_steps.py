"""A short step of a sync run as a local activity first, then, if that one attempt fails, as a regular one.

A regular activity costs a workflow task per step (schedule, dispatch, complete, a new task to go on); the
local attempts of consecutive short steps (compute the peers, read the ConfigMap, probe, write, restart) all
run inside one workflow task. The local attempt is one try with a short timeout
(policies.StepBudget.first_local_attempt), so the task is never held for long; retries run as the regular
activity with the step's whole budget, exactly as before. A step that can wait long (rollout, catch-up, a
rollout slot) is never run here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import policies

I = TypeVar("I")  # noqa: E741 - the activity's input model
O = TypeVar("O")  # noqa: E741 - its output model

# Failures that a second try cannot change: the regular activity would fail the same way (and count twice).
FINAL = frozenset({*policies.NON_RETRYABLE, policies.UNWRITABLE_PEERS})


def peers_to_probe(desired: list[str], applied: list[str], forced: set[str]) -> list[str]:
    """The desired peers not applied yet, but those at a host an operator forced past a failed probe."""
    return [p for p in desired if p not in applied and _host(p) not in forced]


def _host(peer: str) -> str:
    """The host of `id@host:port` as written in an endpoint (IPv6 keeps its brackets)."""
    return peer.split("@", 1)[1].rsplit(":", 1)[0]


class StepRefused(Exception):
    """The local attempt failed in a way no retry can fix; the message is the activity's reason."""


def _final(exc: BaseException) -> ApplicationError | None:
    inner: BaseException | None = exc
    while isinstance(inner, ActivityError):
        inner = inner.__cause__
    if isinstance(inner, ApplicationError) and (inner.non_retryable or inner.type in FINAL):
        return inner
    return None


async def run_step(
    method: Callable[[Any, I], Awaitable[O]] | Callable[[Any, I], O],
    arg: I,
    budget: policies.StepBudget,
    summary: str,
    local: bool,
) -> O:
    """`method(arg)` as one local attempt (when `local`), else or then as a regular activity within `budget`.

    A final failure of the local attempt (non-retryable by type) is raised as it came when it is an
    ActivityError, else as StepRefused: never tried again."""
    if local:
        try:
            return await workflow.execute_local_activity_method(
                method,  # type: ignore[arg-type]
                arg,
                summary=summary,
                **budget.first_local_attempt(),
            )
        except (ActivityError, ApplicationError) as exc:
            final = _final(exc)
            if final is not None:
                if isinstance(exc, ActivityError):
                    raise
                raise StepRefused(final.message) from exc
            workflow.logger.info("%s: local attempt failed (%s); retrying as an activity", summary, exc)
    return await workflow.execute_activity_method(
        method,  # type: ignore[arg-type]
        arg,
        summary=summary,
        **budget.options(),
    )
