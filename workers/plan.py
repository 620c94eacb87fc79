"""`peersync update --dry-run`: what a change would do, computed with the same pure functions the activities
use (validation, discovery, desired peers) over the CLI's own reads, and nothing written anywhere.

The plan calls no activity: it reads the chain (ChainRest) and the cluster (Kube) itself, and asks the
registry for its pins with a workflow query, as a client may (an activity may not: intent flows one way).
"""

from __future__ import annotations

import asyncio

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.chain_rest import ChainRest
from activities.chain_view import launched_memberships, validator_records
from activities.discovery import affected_consumers
from activities.drift import ROLLOUT_ONLY_DRIFT
from activities.kube_ops import (
    AppliedPeers,
    Kube,
    ManagedNamespace,
    NotManagedError,
    UnusableNamespace,
    WorkloadRefusedError,
    api_client,
    explain,
)
from activities.validation import ChangeRefused, validated_endpoint
from core.contracts import (
    ConsumerRef,
    EndpointChangeRequest,
    EndpointSnapshot,
    SkippedConsumer,
    ValidatorRecord,
)
from core.desired import desired_peers
from core.endpoint import Endpoint, EndpointError, parse_endpoint_syntax
from core.ids import registry_id
from core.peer_formats import LayoutError
from core.policy import EndpointPolicy
from workers.settings import Settings
from workflows import policies

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
    # Lines to read before confirming: the endpoint is already another validator's (a typo, or a squatter).
    warnings: list[str] = []


async def plan_change(
    settings: Settings, client: Client | None, request: EndpointChangeRequest
) -> ChangePlan:
    """The change's plan. Raises ChangeRefused (bad input, registry not answering), ChainError, and the
    cluster's ApiException or connection errors when listing the managed namespaces fails."""
    policy = EndpointPolicy.from_setting(settings.endpoint_allow_cidrs)
    async with ChainRest(settings.chain_rest_url) as chain:
        records = await validator_records(chain, policy, settings.bech32_prefix)
        record, endpoint = validated_endpoint(records, request, policy)
        memberships = await launched_memberships(chain)
        # Built in the thread: api_client reads the kubeconfig (file I/O).
        kube, namespaces, broken = await asyncio.to_thread(_managed, settings)
        discovery = affected_consumers(record, memberships, namespaces, broken, settings.cluster_id)
        pinned = await registry_pins(client, settings.cluster_id)
        opted = {
            a.consumer.consumer_id: await chain.opted_in(a.consumer.consumer_id) for a in discovery.affected
        }
    warnings = shared_endpoint_warnings(record.operator_address, endpoint, records, pinned)
    pinned.overrides[record.operator_address] = endpoint.render()  # what the change would pin
    plans, skipped = [], list(discovery.skipped)
    sources = {ns.name: ns.layout.node_ids for ns in namespaces}  # each namespace's node-id source
    for affected in discovery.affected:
        ref = affected.consumer
        want = desired_peers(
            records,
            opted[ref.consumer_id],
            pinned,
            settings.local_validator,
            ref.chain_id,
            policy,
            source=sources[ref.namespace],
        )
        try:
            applied = await asyncio.to_thread(kube.read_applied, ref.namespace, want.peers)
        except UNREADABLE as exc:
            skipped.append(_unreadable(ref, exc))
            continue
        want = want.keeping(applied.peers)  # as the sync does: a validator with no endpoint keeps its entry
        plan = _consumer_plan(ref, applied, want.peers, want.missing)
        if plan.restart:
            try:
                plan.refused = await asyncio.to_thread(kube.restart_refusal, ref.namespace)
            except UNREADABLE as exc:
                skipped.append(_unreadable(ref, exc))
                continue
        plans.append(plan)
    return ChangePlan(
        validator=record.operator_address,
        moniker=record.moniker,
        endpoint=endpoint.render(),
        consumers=plans,
        skipped=skipped,
        warnings=warnings,
    )


def shared_endpoint_warnings(
    operator_address: str, endpoint: Endpoint, records: list[ValidatorRecord], pinned: EndpointSnapshot
) -> list[str]:
    """One line per other validator whose endpoint (published, or pinned by the registry) is on the same
    host: peers would then dial that validator's node under this one's node id."""
    used: list[tuple[str, str, str]] = []  # (operator address, how, endpoint)
    for r in records:
        if r.canonical:
            used.append((r.operator_address, "published", r.canonical))
    for how, pins in (
        ("override", pinned.overrides),
        ("held", pinned.holds),
        ("last valid", pinned.fallbacks),
    ):
        used.extend((op, how, text) for op, text in pins.items())
    monikers = {r.operator_address: r.moniker for r in records}
    lines = []
    for op, how, text in used:
        if op == operator_address or _host(text) != endpoint.host:
            continue
        line = f"{endpoint.render()} is already used by {monikers.get(op, op)} ({how}: {text})"
        if line not in lines:
            lines.append(line)
    return lines


def _host(text: str) -> str | None:
    try:
        return parse_endpoint_syntax(text).host
    except EndpointError:
        return None


def _managed(settings: Settings) -> tuple[Kube, list[ManagedNamespace], list[UnusableNamespace]]:
    kube = Kube(api_client(settings.kubeconfig), settings.cluster_id)
    namespaces, broken = kube.managed_namespaces()
    return kube, namespaces, broken


async def registry_pins(client: Client | None, cluster_id: str) -> EndpointSnapshot:
    """What the registry holds beyond the chain (overrides, last-valid endpoints), read with its query.

    The rule of the sync itself: only "no registry exists" (NOT_FOUND) or no Temporal at all means the chain
    alone decides. A registry that exists but does not answer refuses the plan: a plan made without its pins
    would show overrides reverted and validators dropped that the real change would keep."""
    if client is None:
        return EndpointSnapshot(registry=False)
    wf_id = registry_id(cluster_id)
    try:
        return await client.get_workflow_handle(wf_id).query(
            "pinned", result_type=EndpointSnapshot, rpc_timeout=policies.REGISTRY_QUERY_TIMEOUT
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return EndpointSnapshot(registry=False)
        reason = exc.message
    except WorkflowQueryFailedError as exc:
        reason = f"query failed: {exc.message}"
    raise ChangeRefused(policies.REGISTRY_UNAVAILABLE, f"{wf_id} did not answer: {reason}")


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
