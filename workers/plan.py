"""`peersync update --dry-run`: what a change would do, computed with the same reads the workflows use
and nothing written anywhere."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from temporalio.client import Client

from activities.defs import PeersyncActivities
from activities.desired import desired_peers
from workers.settings import Settings
from workflows.activity_contracts import DiscoverInput, ValidateInput
from workflows.contracts import EndpointChangeRequest, SkippedConsumer


class ConsumerPlan(BaseModel):
    namespace: str
    chain_id: str
    old_peers: list[str]
    new_peers: list[str]
    restart: bool
    live: bool = False  # `dial_peers` on the running nodes (peersync.io/strategy live, live-then-restart)
    missing: list[str]


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
    plans = []
    for affected in discovery.affected:
        ref = affected.consumer
        want = desired_peers(
            records, opted[ref.consumer_id], pinned, settings.local_validator, ref.chain_id, acts.policy
        )
        applied = await asyncio.to_thread(acts.kube.read_applied, ref.namespace)
        strategy = applied.layout.strategy
        stale = set(want.peers) != set(applied.peers) or applied.workload_hash != applied.peers_hash
        plans.append(
            ConsumerPlan(
                namespace=ref.namespace,
                chain_id=ref.chain_id,
                old_peers=applied.peers,
                new_peers=want.peers,
                restart=strategy != "live" and stale,
                live=strategy != "restart" and stale,
                missing=want.missing,
            )
        )
    return ChangePlan(
        validator=change.operator_address,
        moniker=change.moniker,
        endpoint=change.endpoint,
        consumers=plans,
        skipped=discovery.skipped,
    )
