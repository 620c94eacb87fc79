"""`peersync update --dry-run`: what a change would do, computed with the same reads the workflows use
and nothing written anywhere."""

from __future__ import annotations

import asyncio

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel
from temporalio.client import Client

from activities.defs import PeersyncActivities
from activities.desired import desired_peers
from activities.drift import ROLLOUT_ONLY_DRIFT
from activities.kube_ops import AppliedPeers, NotManagedError, WorkloadRefusedError, explain
from activities.peer_formats import LayoutError
from workers.settings import Settings
from workflows.activity_contracts import DiscoverInput, ValidateInput
from workflows.contracts import ConsumerRef, EndpointChangeRequest, SkippedConsumer

# What keeps one namespace out of the plan (reconcile --dry-run skips the namespace for the same ones).
UNREADABLE = (ApiException, NotManagedError, WorkloadRefusedError, LayoutError)


class ConsumerPlan(BaseModel):
    namespace: str
    chain_id: str
    old_peers: list[str]
    new_peers: list[str]
    restart: bool
    live: bool = False  # `dial_peers` on the running nodes (peersync.io/strategy live, live-then-restart)
    missing: list[str]
    why: str | None = None  # why the nodes get new peers when the lists alone do not say (equal lists)
    kept: list[str] = []  # the operator's own entries (sentries, private peers): kept as they are
    # Why the restart would be refused (two pods could sign with one key: activities/workload_safety).
    refused: str | None = None


class ChangePlan(BaseModel):
    validator: str
    moniker: str
    endpoint: str
    consumers: list[ConsumerPlan]
    skipped: list[SkippedConsumer]


async def plan_change(
    settings: Settings, client: Client | None, request: EndpointChangeRequest
) -> ChangePlan:
    acts = PeersyncActivities(settings, client)
    change = await acts.validate_change(ValidateInput(request=request))
    discovery = await acts.discover_affected_consumers(
        DiscoverInput(operator_address=change.operator_address)
    )
    pinned = await acts.pinned()
    pinned.overrides[change.operator_address] = change.endpoint
    async with acts.chain() as chain:
        records = await acts.records(chain)
        opted = {
            a.consumer.consumer_id: await chain.opted_in(a.consumer.consumer_id) for a in discovery.affected
        }
    plans, skipped = [], list(discovery.skipped)
    for affected in discovery.affected:
        ref = affected.consumer
        want = desired_peers(
            records, opted[ref.consumer_id], pinned, settings.local_validator, ref.chain_id, acts.policy
        )
        try:
            applied = await asyncio.to_thread(acts.kube.read_applied, ref.namespace, want.peers)
        except UNREADABLE as exc:
            skipped.append(_unreadable(ref, exc))
            continue
        want = want.keeping(applied.peers)  # as the sync does: a validator with no endpoint keeps its entry
        plan = _consumer_plan(ref, applied, want.peers, want.missing)
        if plan.restart:
            try:
                plan.refused = await asyncio.to_thread(acts.kube.restart_refusal, ref.namespace)
            except UNREADABLE as exc:
                skipped.append(_unreadable(ref, exc))
                continue
        plans.append(plan)
    return ChangePlan(
        validator=change.operator_address,
        moniker=change.moniker,
        endpoint=change.endpoint,
        consumers=plans,
        skipped=skipped,
    )


def _consumer_plan(
    ref: ConsumerRef, applied: AppliedPeers, want: list[str], missing: list[str]
) -> ConsumerPlan:
    strategy = applied.layout.strategy
    peers_move = set(want) != set(applied.peers)
    lagging = applied.workload_hash != applied.peers_hash
    stale = peers_move or lagging
    return ConsumerPlan(
        namespace=ref.namespace,
        chain_id=ref.chain_id,
        old_peers=applied.peers,
        new_peers=want,
        restart=strategy != "live" and stale,
        live=strategy != "restart" and stale,
        missing=missing,
        why=ROLLOUT_ONLY_DRIFT if lagging and not peers_move else None,
        kept=applied.kept,
    )


def _unreadable(ref: ConsumerRef, exc: Exception) -> SkippedConsumer:
    """Formatted as check_drift does: the apiserver's own message (str() of an ApiException carries the
    response headers and body)."""
    reason = explain(exc) if isinstance(exc, ApiException) else str(exc)
    return SkippedConsumer(
        chain_id=ref.chain_id, consumer_id=ref.consumer_id, reason=f"namespace {ref.namespace}: {reason}"
    )
