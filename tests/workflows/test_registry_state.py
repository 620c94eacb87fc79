"""The registry's pure transitions: bucketed diffs, change detection, overrides, collisions."""

from __future__ import annotations

from core.contracts import EndpointStatus, ValidatorRecord
from core.registry_state import RegistryState, bucket_of, changed_buckets


def rec(
    op: str, moniker: str, endpoint: str | None, status: EndpointStatus = EndpointStatus.VALID
) -> ValidatorRecord:
    return ValidatorRecord(
        operator_address=op,
        moniker=moniker,
        valcons=f"valcons-{op}",
        bond_status="BOND_STATUS_BONDED",
        details=f"p2p={endpoint}" if endpoint else "",
        endpoint=endpoint,
        status=status,
        reason=None if status == EndpointStatus.VALID else "bad",
        canonical=endpoint if status == EndpointStatus.VALID else None,
    )


def refresh(
    state: RegistryState, records: list[ValidatorRecord], height: int, edits: dict[str, int] | None = None
):
    return state.apply_refresh(height, changed_buckets(records, state.fingerprints()), edits or {})


def world(n: int = 40) -> list[ValidatorRecord]:
    return [rec(f"op{i:03d}", f"v{i}", f"1.2.3.{i}") for i in range(n)]


def test_first_refresh_is_the_baseline_and_an_unchanged_refresh_returns_nothing() -> None:
    state = RegistryState(cluster_id="c")
    records = world()
    assert refresh(state, records, 10) == []
    assert len(state.entries) == 40
    assert changed_buckets(records, state.fingerprints()) == {}


def test_one_move_returns_one_bucket_and_one_change() -> None:
    state = RegistryState(cluster_id="c")
    records = world()
    refresh(state, records, 10)
    records[7] = rec("op007", "v7", "5.6.7.8")
    diff = changed_buckets(records, state.fingerprints())
    assert list(diff) == [bucket_of("op007")]
    assert len(diff[bucket_of("op007")]) < len(records)
    events = state.apply_refresh(11, diff, {"op007": 11})
    assert [(e.operator_address, e.endpoint, e.height) for e in events] == [("op007", "5.6.7.8", 11)]
    assert state.entries["op007"].height == 11


def test_invalid_new_endpoint_keeps_the_last_valid_one_in_effect() -> None:
    state = RegistryState(cluster_id="c")
    records = world(3)
    refresh(state, records, 1)
    records[1] = rec("op001", "v1", "10.0.0.5", EndpointStatus.INVALID)
    assert refresh(state, records, 2) == []
    entry = state.entries["op001"]
    assert (entry.record.status, entry.effective) == (EndpointStatus.INVALID, "1.2.3.1")


def test_moniker_change_is_a_change_because_node_ids_derive_from_it() -> None:
    state = RegistryState(cluster_id="c")
    records = world(3)
    refresh(state, records, 1)
    records[2] = rec("op002", "renamed", "1.2.3.2")
    events = refresh(state, records, 2)
    assert [(e.moniker, e.endpoint) for e in events] == [("renamed", "1.2.3.2")]


def test_override_survives_refreshes_until_the_chain_moves() -> None:
    state = RegistryState(cluster_id="c")
    records = world(3)
    refresh(state, records, 5)
    state.set_override("op000", "9.9.9.9")
    assert state.entries["op000"].effective == "9.9.9.9"
    assert refresh(state, records, 6) == []
    assert state.entries["op000"].effective == "9.9.9.9"
    records[0] = rec("op000", "v0", "4.4.4.4")
    events = refresh(state, records, 7, {"op000": 7})
    assert state.entries["op000"].override is None
    assert [(e.endpoint) for e in events] == ["4.4.4.4"]


def test_cleared_override_falls_back_to_the_chain() -> None:
    state = RegistryState(cluster_id="c")
    refresh(state, world(2), 5)
    state.set_override("op001", "9.9.9.9")
    state.set_override("op001", None)
    assert state.entries["op001"].effective == "1.2.3.1"


def test_vanished_validator_leaves_the_table_and_collisions_are_flagged() -> None:
    state = RegistryState(cluster_id="c")
    records = world(3)
    refresh(state, records, 1)
    records = [records[0], rec("op001", "v0", "1.2.3.1")]  # op002 gone, op001 squats v0's moniker
    refresh(state, records, 2)
    assert set(state.entries) == {"op000", "op001"}
    assert [v.collision for v in state.view()] == [True, True]
    try:
        state.resolve("v0")
    except KeyError as exc:
        assert "used by 2 validators" in str(exc)
    else:
        raise AssertionError("an ambiguous moniker must not resolve")
    assert state.resolve("op001").record.moniker == "v0"
