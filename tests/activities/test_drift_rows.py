"""Drift rows name the peers that differ (issue 13, item 6): which validator, which entry, what kind."""

from __future__ import annotations

from activities.drift import peer_drift
from core.contracts import EndpointStatus, ValidatorRecord
from core.upstream import upstream_node_id
from workflows.reconcile_contracts import PeerDrift

CHAIN = "consumer-1"


def record(moniker: str) -> ValidatorRecord:
    return ValidatorRecord(
        operator_address=f"op-{moniker}", moniker=moniker, valcons=f"vc-{moniker}", bond_status="BONDED",
        details="", status=EndpointStatus.VALID,
    )  # fmt: skip


def entry(moniker: str, address: str) -> str:
    return f"{upstream_node_id(moniker, CHAIN)}@{address}"


RECORDS = [record(m) for m in ("bob", "carol", "dave")]


def test_missing_moved_and_stale_entries_are_named() -> None:
    want = {"op-bob": entry("bob", "10.0.0.7:26656"), "op-dave": entry("dave", "10.0.0.8:26656")}
    applied = [entry("dave", "10.0.0.1:26656"), entry("carol", "10.0.0.9:26656")]
    rows = peer_drift(want, applied, RECORDS, CHAIN)
    assert [(r.kind, r.moniker, r.operator_address) for r in rows] == [
        ("missing", "bob", "op-bob"),
        ("moved", "dave", "op-dave"),
        ("stale", "carol", "op-carol"),
    ]
    bob = upstream_node_id("bob", CHAIN)[:8]
    dave = upstream_node_id("dave", CHAIN)[:8]
    assert [r.describe() for r in rows] == [
        f"missing bob {bob}..@10.0.0.7:26656",
        f"moved dave {dave}..@10.0.0.1:26656 -> 10.0.0.8:26656",
        "stale carol @10.0.0.9:26656",
    ]


def test_equal_entries_give_no_row_and_an_unknown_node_id_is_said_so() -> None:
    stranger = "ab" * 20 + "@10.0.0.5:26656"
    want = {"op-bob": entry("bob", "10.0.0.7:26656")}
    rows = peer_drift(want, [entry("bob", "10.0.0.7:26656"), stranger], RECORDS, CHAIN)
    assert rows == [PeerDrift(kind="stale", applied=stranger)]
    assert rows[0].describe() == "stale unknown validator @10.0.0.5:26656"


def test_a_second_entry_of_a_wanted_node_id_is_stale() -> None:
    want = {"op-bob": entry("bob", "10.0.0.7:26656")}
    rows = peer_drift(want, [entry("bob", "10.0.0.7:26656"), entry("bob", "10.0.0.6:26656")], RECORDS, CHAIN)
    assert [(r.kind, r.moniker, r.applied) for r in rows] == [
        ("stale", "bob", entry("bob", "10.0.0.6:26656"))
    ]
