"""An override's plan warns when its host is already another validator's endpoint (issue 13 item 5)."""

from __future__ import annotations

from core.contracts import EndpointSnapshot, EndpointStatus, ValidatorRecord
from core.endpoint import parse_endpoint_syntax
from workers.plan import shared_endpoint_warnings


def record(op: str, moniker: str, canonical: str | None) -> ValidatorRecord:
    status = EndpointStatus.VALID if canonical else EndpointStatus.MISSING
    return ValidatorRecord(
        operator_address=op, moniker=moniker, valcons=f"valcons-{op}", bond_status="BOND_STATUS_BONDED",
        details="", endpoint=canonical, status=status, canonical=canonical,
    )  # fmt: skip


RECORDS = [
    record("a", "alice", "1.2.3.1"),
    record("b", "bob", "1.2.3.2"),
    record("c", "carol", "1.2.3.3:26656"),
]


def test_a_host_published_or_pinned_by_another_validator_is_named() -> None:
    pins = EndpointSnapshot(overrides={"a": "1.2.3.3"})
    lines = shared_endpoint_warnings("b", parse_endpoint_syntax("1.2.3.3"), RECORDS, pins)
    assert lines == [
        "1.2.3.3 is already used by carol (published: 1.2.3.3:26656)",
        "1.2.3.3 is already used by alice (override: 1.2.3.3)",
    ]


def test_a_free_host_or_the_validators_own_is_no_warning() -> None:
    assert shared_endpoint_warnings("b", parse_endpoint_syntax("1.2.3.9"), RECORDS, EndpointSnapshot()) == []
    assert shared_endpoint_warnings("b", parse_endpoint_syntax("1.2.3.2"), RECORDS, EndpointSnapshot()) == []
