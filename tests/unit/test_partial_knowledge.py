"""Partial knowledge never acts (issue 9, item 3): a registry that does not answer fails the read (the sync
retries); only a registry that does not exist lets the chain alone decide, and even then a validator with no
endpoint in effect keeps the entry a consumer already has."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.defs import PeersyncActivities
from core.contracts import EndpointSnapshot, EndpointStatus
from core.desired import desired_peers
from core.peers import UPSTREAM_SCHEME
from core.policy import EndpointPolicy
from tests.workflows.test_registry_state import rec
from workers.settings import Settings
from workflows import policies

CHAIN = "consumer-1"
POLICY = EndpointPolicy.from_setting("")
RECORDS = [
    rec("op-a", "alice", "1.2.3.1"),
    rec("op-b", "bob", None, EndpointStatus.MISSING),  # bob's details no longer name an endpoint
    rec("op-c", "carol", "1.2.3.3"),
]
OPTED = [r.valcons for r in RECORDS]
BOB_ID = UPSTREAM_SCHEME.node_id("bob", CHAIN)
BOB_APPLIED = f"{BOB_ID}@1.2.3.2:26656"
SENTRY = f"{'e' * 40}@10.0.0.9:26656"


class _Handle:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    async def query(self, name: str, **_: Any) -> Any:
        assert name == "pinned"
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class _Client:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        assert workflow_id == "registry-alice"
        return _Handle(self.outcome)


def _activities(outcome: Any) -> PeersyncActivities:
    settings = Settings(cluster_id="alice", chain_rpc_url="http://x", chain_rest_url="http://x")
    return PeersyncActivities(settings.activity_config(), _Client(outcome))  # type: ignore[arg-type]


async def test_a_registry_that_answers_is_the_authority() -> None:
    held = EndpointSnapshot(overrides={"op-a": "1.2.4.1"}, fallbacks={"op-b": "1.2.3.2"})
    assert await _activities(held).pinned() == held


async def test_no_registry_at_all_means_the_chain_alone_decides() -> None:
    gone = RPCError("workflow not found for ID: registry-alice", RPCStatusCode.NOT_FOUND, b"")
    pinned = await _activities(gone).pinned()
    assert pinned == EndpointSnapshot(registry=False)


@pytest.mark.parametrize(
    "failure",
    [
        RPCError("context deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""),
        RPCError("workflow task in failed state", RPCStatusCode.FAILED_PRECONDITION, b""),
        WorkflowQueryFailedError("query handler raised"),
    ],
    ids=["timeout", "unavailable", "stuck-task", "query-failed"],
)
async def test_a_registry_that_does_not_answer_is_a_retryable_failure_never_an_empty_answer(
    failure: Exception,
) -> None:
    with pytest.raises(ApplicationError) as caught:
        await _activities(failure).pinned()
    err = caught.value
    assert err.type == policies.REGISTRY_UNAVAILABLE and not err.non_retryable
    assert err.message.startswith("registry-alice did not answer: "), err.message
    assert policies.REGISTRY_UNAVAILABLE not in policies.NON_RETRYABLE


def test_without_a_registry_a_validator_with_no_endpoint_keeps_its_applied_entry() -> None:
    want = desired_peers(RECORDS, OPTED, EndpointSnapshot(registry=False), "op-a", CHAIN, POLICY)
    assert not want.authoritative
    assert want.missing == ["op-b"] and want.keep_if_present == {"op-b": BOB_ID}
    carol = want.by_validator["op-c"]
    assert want.peers == [carol]  # the chain alone would drop bob ...

    applied = sorted([BOB_APPLIED, carol, SENTRY])
    kept = want.keeping(applied)
    assert kept.peers == sorted([BOB_APPLIED, carol])  # ... the sync keeps him: nothing to restart for
    assert kept.by_validator["op-b"] == BOB_APPLIED
    assert want.keeping([carol]) is want  # a consumer that never had bob does not get him invented


def test_the_registry_fallback_wins_over_the_applied_entry() -> None:
    pinned = EndpointSnapshot(fallbacks={"op-b": "1.2.3.20"})
    want = desired_peers(RECORDS, OPTED, pinned, "op-a", CHAIN, POLICY)
    assert want.authoritative and want.keep_if_present == {} and want.missing == []
    assert want.keeping([BOB_APPLIED]).by_validator["op-b"].split("@")[1].startswith("1.2.3.20:")
