"""The one reading of a failure's reason (workflows/failures.py)."""

from __future__ import annotations

from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from workflows.failures import error_cause


def _activity_error(cause: BaseException | None) -> ActivityError:
    err = ActivityError(
        "Activity task failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="worker",
        activity_type="probe_endpoint",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    return err


def test_an_activity_failure_gives_its_application_message() -> None:
    assert error_cause(_activity_error(ApplicationError("node down", type="Unreachable"))) == "node down"


def test_a_bare_application_error_from_a_local_activity_gives_its_message() -> None:
    assert error_cause(ApplicationError("bad endpoint", type="InvalidEndpoint")) == "bad endpoint"


def test_a_timeout_gives_the_timeout_not_the_wrapper() -> None:
    timeout = TimeoutError(
        "activity StartToClose timeout", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]
    )
    assert error_cause(_activity_error(timeout)) == "activity StartToClose timeout"


def test_a_wrapper_without_a_cause_gives_its_own_text() -> None:
    assert error_cause(_activity_error(None)) == "Activity task failed"


def test_client_wrappers_are_unwrapped_through_nested_causes() -> None:
    refused = ApplicationError(
        "registry: no validator with operator address or moniker 'x'", type="ValueError"
    )
    assert error_cause(WorkflowUpdateFailedError(refused)) == refused.message
    assert error_cause(WorkflowFailureError(cause=_activity_error(refused))) == refused.message


def test_any_other_exception_gives_its_text() -> None:
    assert error_cause(RuntimeError("no reply from consumer-a")) == "no reply from consumer-a"
