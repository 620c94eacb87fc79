"""The one reading of "why did it fail" for every caller: workflows, activities and the CLI.

A failure reaches peersync wrapped: an activity's ApplicationError arrives inside an ActivityError (a
local activity's may arrive bare), a child's inside a ChildWorkflowError, an update's refusal inside a
WorkflowUpdateFailedError. The reason a person needs is the wrapped failure's message, not the wrapper's
"Activity task failed". Pure: no I/O, safe inside the workflow sandbox (temporalio passes through).
"""

from __future__ import annotations

from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ChildWorkflowError, FailureError

# Exceptions that only say where a failure came from; the failure itself is their cause.
WRAPPERS: tuple[type[BaseException], ...] = (
    ActivityError,
    ChildWorkflowError,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)


def error_cause(exc: BaseException) -> str:
    """The reason behind `exc`: the message of the failure its wrappers carry, else its own text."""
    inner = exc
    while isinstance(inner, WRAPPERS) and inner.__cause__ is not None:
        inner = inner.__cause__
    if isinstance(inner, FailureError) and inner.message:
        return inner.message  # an ApplicationError's text, without "ValueError: " or the wrapper's words
    return str(inner) or str(exc) or type(inner).__name__
