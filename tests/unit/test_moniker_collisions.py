"""Issue 12 item 3: under the upstream scheme a node id derives from the moniker, so validators whose
monikers collide are invalid for node-id derivation: refused with the reason, never written; what is applied
for them stays."""

from __future__ import annotations

import pytest

from activities.validation import ChangeRefused, validated_endpoint
from core.contracts import EndpointChangeRequest, EndpointSnapshot
from core.desired import desired_peers, moniker_collisions
from core.peers import UPSTREAM_SCHEME
from core.policy import EndpointPolicy
from tests.workflows.test_registry_state import rec

POLICY = EndpointPolicy.from_setting("")  # the default: public addresses only (8.8.8.x are)
CHAIN = "consumer-1"


def records() -> list:
    bob = rec("op-bob", "bob", "8.8.8.2")
    squatter = rec("op-carol", "bob", "8.8.8.3")  # carol renamed herself "bob"
    dave = rec("op-dave", "dave", "8.8.8.4")
    return [r.model_copy(update={"valcons": f"vc-{r.operator_address}"}) for r in (bob, squatter, dave)]


def test_each_colliding_validator_is_named_with_the_others() -> None:
    found = moniker_collisions(records())
    assert set(found) == {"op-bob", "op-carol"}
    assert "also used by op-carol" in found["op-bob"] and "also used by op-bob" in found["op-carol"]


def test_nothing_is_written_for_a_collision_and_the_applied_entries_stay() -> None:
    bob_id = UPSTREAM_SCHEME.node_id("bob", CHAIN)
    carol_old = UPSTREAM_SCHEME.node_id("carol", CHAIN)  # what was written before the rename
    applied = [f"{bob_id}@8.8.8.2:26656", f"{carol_old}@8.8.8.3:26656"]
    desired = desired_peers(
        records(), ["vc-op-bob", "vc-op-carol", "vc-op-dave"], EndpointSnapshot(), None, CHAIN, POLICY
    )
    assert set(desired.refused) == {"op-bob", "op-carol"}
    assert [p.split("@")[1].split(":")[0] for p in desired.peers] == ["8.8.8.4"]  # only dave is derived
    kept = desired.keeping(applied)
    assert set(kept.peers) == {*applied, *desired.peers}  # bob's and carol's entries exactly as they were


def test_a_change_of_a_colliding_validator_is_refused_with_the_reason() -> None:
    with pytest.raises(ChangeRefused) as refused:
        validated_endpoint(records(), EndpointChangeRequest(validator="op-carol"), POLICY)
    assert "moniker 'bob' is also used by op-bob" in refused.value.message
    record, endpoint = validated_endpoint(records(), EndpointChangeRequest(validator="dave"), POLICY)
    assert record.operator_address == "op-dave" and endpoint.host == "8.8.8.4"
