"""The registry as the one writer of intent (pure state): it names, supersedes and commits changes by the
heights it holds, and versions the snapshot it hands out."""

from __future__ import annotations

from core.contracts import ChangeCommit, EndpointSnapshot, EndpointStatus
from core.registry_state import RegistryState
from tests.workflows.test_registry_state import rec, refresh


def three() -> tuple[RegistryState, list]:
    state = RegistryState(cluster_id="c", epoch="e1")
    records = [rec("op0", "alice", "1.1.1.1"), rec("op1", "bob", "2.2.2.2"), rec("op2", "carol", "3.3.3.3")]
    refresh(state, records, 10)
    return state, records


def move(state: RegistryState, records: list, i: int, host: str, height: int):
    records[i] = rec(records[i].operator_address, records[i].moniker, host)
    (event,) = refresh(state, records, height, {records[i].operator_address: height})
    return event


def test_a_newer_chain_move_supersedes_the_older_change_and_its_commit_is_refused() -> None:
    state, records = three()
    first = move(state, records, 1, "9.9.9.1", 11)
    assert state.record_started(first) is None
    second = move(state, records, 1, "9.9.9.2", 12)
    assert state.record_started(second) == first.change_id("c")  # the registry tells the older one
    verdict = state.commit(
        ChangeCommit(change_id=first.change_id("c"), operator_address="op1", endpoint="9.9.9.1", height=11)
    )
    assert verdict.answer.refused == f"superseded by {second.change_id('c')}"
    assert verdict.answer.current == second.change_id("c") and verdict.answer.snapshot is None
    ok = state.commit(
        ChangeCommit(change_id=second.change_id("c"), operator_address="op1", endpoint="9.9.9.2", height=12)
    )
    assert ok.answer.refused is None and ok.supersede is None and ok.answer.snapshot is not None


def test_an_unknown_older_change_is_refused_by_height_an_unknown_newer_one_adopted() -> None:
    state, records = three()
    current = move(state, records, 1, "9.9.9.1", 20)
    state.record_started(current)
    old = ChangeCommit(
        change_id="from-the-previous-release", operator_address="op1", endpoint="8.8.8.8", height=15
    )
    assert state.commit(old).answer.refused == f"superseded by {current.change_id('c')}"
    by_hand = ChangeCommit(
        change_id="temporal-cli", operator_address="op1", endpoint="7.7.7.7", override=True
    )
    verdict = state.commit(by_hand)  # height None: started by hand now, the newest intent
    assert verdict.answer.refused is None and verdict.supersede == current.change_id("c")
    assert state.entries["op1"].override == "7.7.7.7"
    assert state.entries["op1"].change.id == "temporal-cli"
    assert current.change_id("c") in state.entries["op1"].superseded


def test_an_override_is_pinned_only_at_commit_and_bumps_the_snapshot_version() -> None:
    state, _ = three()
    manual = state.manual_change("op1", "7.7.7.7", override=True)
    state.record_started(manual)
    assert manual.workflow_id == "endpoint-change-c-manual-10-1" and manual.source == "manual"
    assert state.pinned().overrides == {}  # started, not committed: nothing pinned yet
    v0 = state.pinned().version
    verdict = state.commit(
        ChangeCommit(
            change_id=manual.workflow_id, operator_address="op1", endpoint="7.7.7.7", override=True, height=10
        )
    )
    snap = verdict.answer.snapshot
    assert snap.overrides == {"op1": "7.7.7.7"} and snap.version == v0 + 1 and snap.epoch == "e1"
    again = state.commit(
        ChangeCommit(
            change_id=manual.workflow_id, operator_address="op1", endpoint="7.7.7.7", override=True, height=10
        )
    )
    assert again.answer.snapshot.version == snap.version  # a repeated commit moves nothing


def test_a_second_manual_change_supersedes_the_first_so_approving_the_first_cannot_pin_it() -> None:
    state, _ = three()
    first = state.manual_change("op1", "7.7.7.7", override=True)
    state.record_started(first)
    second = state.manual_change("op1", "6.6.6.6", override=True)
    assert second.workflow_id != first.workflow_id
    assert state.record_started(second) == first.workflow_id
    late = state.commit(
        ChangeCommit(
            change_id=first.workflow_id, operator_address="op1", endpoint="7.7.7.7", override=True, height=10
        )
    )
    assert late.answer.refused is not None and state.entries["op1"].override is None


def test_the_version_moves_with_the_pins_only() -> None:
    state, records = three()
    v = state.version
    move(state, records, 0, "1.1.1.9", 11)  # a published move: no pin moves
    assert state.version == v
    records[2] = rec("op2", "carol", "10.0.0.1", EndpointStatus.INVALID)
    refresh(state, records, 12)  # carol's last valid endpoint becomes a fallback pin
    assert state.version == v + 1 and state.pinned().fallbacks == {"op2": "3.3.3.3"}
    state.set_override("op1", "5.5.5.5")
    state.set_override("op1", None)
    assert state.version == v + 3


def test_snapshots_order_by_epoch_then_version() -> None:
    old = EndpointSnapshot(version=9, epoch="20261201T000000.000000-aaaa")
    newer = EndpointSnapshot(version=10, epoch=old.epoch)
    restarted = EndpointSnapshot(version=0, epoch="20261206T000000.000000-bbbb")
    assert newer.newer_than(old) and not old.newer_than(newer) and not old.newer_than(old)
    assert restarted.newer_than(newer) and not newer.newer_than(restarted)
    assert old.newer_than(None)


def test_the_record_of_changes_survives_a_republished_record() -> None:
    state, records = three()
    first = move(state, records, 1, "9.9.9.1", 11)
    state.record_started(first)
    records[1] = rec("op1", "bob", "9.9.9.1").model_copy(update={"details": "p2p=9.9.9.1 website=x"})
    refresh(state, records, 12)  # a details edit that moves nothing
    assert state.entries["op1"].change.id == first.change_id("c")
