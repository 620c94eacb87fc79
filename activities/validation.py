"""The first step of an endpoint change, as a pure function: which validator, and which endpoint.

Shared by the `validate_change` activity and the CLI's dry-run plan (workers/plan.py), so both refuse the
same input with the same words. No I/O: the caller reads the validator records.
"""

from __future__ import annotations

from core.contracts import EndpointChangeRequest, EndpointStatus, ValidatorRecord
from core.desired import moniker_collisions
from core.endpoint import Endpoint, EndpointError, parse_endpoint
from core.policy import EndpointPolicy
from core.validator_names import UnknownValidatorError, resolve_validator
from workflows import policies


class ChangeRefused(ValueError):
    """Input no retry can fix; `kind` is the error type the retry policies know (workflows/policies.py)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def validated_endpoint(
    records: list[ValidatorRecord], request: EndpointChangeRequest, policy: EndpointPolicy
) -> tuple[ValidatorRecord, Endpoint]:
    """The validator the request names (operator address or moniker) and the endpoint it moves to: the
    request's own, else the one the chain publishes. Raises ChangeRefused saying why not."""
    try:
        record = resolve_validator(
            records, request.validator, lambda r: r.operator_address, lambda r: r.moniker
        )
    except UnknownValidatorError as exc:
        raise ChangeRefused(policies.UNKNOWN_VALIDATOR, str(exc)) from None
    collided = moniker_collisions(records).get(record.operator_address)
    if collided is not None:  # its peer entry's node id would be another validator's (a squatter's trick)
        raise ChangeRefused(policies.INVALID_ENDPOINT, f"{record.operator_address}: {collided}")
    text = request.endpoint
    if text is None and record.status == EndpointStatus.VALID:
        text = record.canonical
    if text is None:
        raise ChangeRefused(
            policies.INVALID_ENDPOINT,
            f"{record.moniker}'s published endpoint is {record.status}: {record.reason}",
        )
    try:
        return record, parse_endpoint(text, policy)
    except EndpointError as exc:
        raise ChangeRefused(policies.INVALID_ENDPOINT, f"endpoint {text!r}: {exc.reason}") from None
