"""When the chain takes over from an operator's override: only a newly published valid endpoint does."""

from __future__ import annotations

from core.contracts import EndpointStatus
from core.registry_state import RegistryState
from tests.workflows.test_registry_state import rec, refresh, world


def pinned_state() -> tuple[RegistryState, list]:
    state = RegistryState(cluster_id="c")
    records = world(3)
    refresh(state, records, 5)
    state.set_override("op000", "9.9.9.9")
    return state, records


def test_a_details_edit_that_keeps_the_endpoint_keeps_the_override() -> None:
    state, records = pinned_state()
    records[0] = records[0].model_copy(update={"details": "p2p=1.2.3.0 (maintenance on Friday)"})
    assert refresh(state, records, 6, {"op000": 6}) == []
    assert state.entries["op000"].override == "9.9.9.9"
    assert state.entries["op000"].effective == "9.9.9.9"


def test_an_invalid_or_missing_publication_keeps_the_override() -> None:
    state, records = pinned_state()
    records[0] = rec("op000", "v0", "10.0.0.5", EndpointStatus.INVALID)
    assert refresh(state, records, 6, {"op000": 6}) == []  # no change back to the stale last-valid one
    records[0] = rec("op000", "v0", None, EndpointStatus.MISSING)
    assert refresh(state, records, 7, {"op000": 7}) == []
    assert state.entries["op000"].effective == "9.9.9.9"


def test_a_new_valid_endpoint_after_the_override_wins() -> None:
    state, records = pinned_state()
    records[0] = rec("op000", "v0", "4.4.4.4")
    events = refresh(state, records, 6, {"op000": 6})
    assert state.entries["op000"].override is None
    assert [e.endpoint for e in events] == ["4.4.4.4"]


def test_republishing_after_an_invalid_one_wins_too() -> None:
    state, records = pinned_state()
    records[0] = rec("op000", "v0", "10.0.0.5", EndpointStatus.INVALID)
    refresh(state, records, 6, {"op000": 6})
    records[0] = rec("op000", "v0", "1.2.3.0")  # the validator publishes (again) a valid endpoint
    events = refresh(state, records, 7, {"op000": 7})
    assert state.entries["op000"].override is None
    assert [e.endpoint for e in events] == ["1.2.3.0"]


def test_an_edit_from_before_the_override_does_not_clear_it() -> None:
    state = RegistryState(cluster_id="c")
    records = world(3)
    refresh(state, records, 5)
    records[0] = rec("op000", "v0", "4.4.4.4")
    state.height = 8  # the override was set at height 8; the refresh reports an edit made at height 7
    state.set_override("op000", "9.9.9.9")
    refresh(state, records, 9, {"op000": 7})
    assert state.entries["op000"].override == "9.9.9.9"


def test_clearing_an_override_queues_a_change_back_to_the_chain_once() -> None:
    state, records = pinned_state()
    event = state.set_override("op000", None)
    assert event is not None and event.endpoint == "1.2.3.0" and event.workflow_id
    assert state.set_override("op000", None) is None  # nothing in effect moved: nothing more to do
    events = refresh(state, records, 6) + state.take_pending_changes(exclude=set())
    assert [e.workflow_id for e in events] == [event.workflow_id]
    assert state.pending_changes == []

    state.set_override("op000", "9.9.9.9")
    again = state.set_override("op000", None)
    assert again is not None and again.workflow_id != event.workflow_id  # a second clear is a new change


def test_a_refresh_change_of_the_same_validator_supersedes_a_queued_clear() -> None:
    state, records = pinned_state()
    state.set_override("op000", None)
    records[0] = rec("op000", "v0", "4.4.4.4")
    events = refresh(state, records, 6, {"op000": 6})
    events += state.take_pending_changes(exclude={e.operator_address for e in events})
    assert [(e.endpoint, e.workflow_id) for e in events] == [("4.4.4.4", None)]
