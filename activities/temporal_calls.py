"""Activities that talk to Temporal itself (a workflow can only signal another workflow).

A workflow asks a ConsumerSyncWorkflow for a sync with signal-with-start from here, carrying a reply-to
and a request id; the answer comes back as a signal. No activity waits for a sync, so no worker slot is
held while rollouts run (waiting activities would starve the syncs' own activities of slots). Retries are
safe: the request id dedupes a request sent twice; starts use deterministic ids with USE_EXISTING.
The CLI, which can wait, uses update-with-start instead (`sync_now`).
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.config import ActivityConfig
from core.contracts import ConsumerRef, EndpointChangeRequest, SyncRequest, SyncResult
from core.ids import consumer_sync_id, registry_id, rollout_slots_id

# Workflow modules as modules, not names: the workflows import this module's TemporalCalls for typed
# activity calls, and `from module import Name` inside such an import cycle fails on whichever loads first.
from workflows import consumer_sync, endpoint_change, rollout_slots
from workflows.activity_contracts import OverrideInput, SlotCallInput, StartChangesInput, SyncCallInput
from workflows.search_attributes import CLUSTER, VALIDATOR


def _consumer_sync_start(settings: ActivityConfig, ref: ConsumerRef) -> dict[str, Any]:
    return {
        "id": consumer_sync_id(ref.cluster_id, ref.namespace),
        "task_queue": settings.task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "static_summary": f"peers of {ref.chain_id} in {ref.namespace}",
    }


def stamped(request: SyncRequest, settings: ActivityConfig, ref: ConsumerRef) -> SyncRequest:
    """The request with the sender's current view of the settings and of the consumer."""
    return request.model_copy(update={"require_approval": settings.require_approval, "consumer": ref})


async def sync_now(
    client: Client,
    settings: ActivityConfig,
    ref: ConsumerRef,
    request: SyncRequest,
    update_id: str | None = None,
) -> SyncResult:
    """Ask the consumer's ConsumerSyncWorkflow (started if need be) for a sync; return its result."""
    op = WithStartWorkflowOperation(
        consumer_sync.ConsumerSyncWorkflow.run,
        consumer_sync.ConsumerSyncState(consumer=ref, require_approval=settings.require_approval),
        **_consumer_sync_start(settings, ref),
    )
    # Wait for "accepted" first, then for the result: the start operation is settled by then, so a caller
    # cancelled while the sync runs (a cancelled activity) leaves no unretrieved start future behind.
    update = await client.start_update_with_start_workflow(
        consumer_sync.ConsumerSyncWorkflow.sync,
        stamped(request, settings, ref),
        start_workflow_operation=op,
        id=update_id,
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    return await update.result()


async def ensure_rollout_slots(
    client: Client, settings: ActivityConfig, request: rollout_slots.SlotRequest | None = None
) -> None:
    """Start the cluster's RolloutSlotsWorkflow if needed, and send it `request` (or the current capacity)."""
    signal, arg = ("acquire", request) if request else ("configure", settings.max_parallel_rollouts)
    await client.start_workflow(
        rollout_slots.RolloutSlotsWorkflow.run,
        rollout_slots.SlotsState(cluster_id=settings.cluster_id, capacity=settings.max_parallel_rollouts),
        id=rollout_slots_id(settings.cluster_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=signal,
        start_signal_args=[arg],
        static_summary=f"rollout slots of cluster {settings.cluster_id}",
    )


async def start_endpoint_change(
    client: Client,
    settings: ActivityConfig,
    workflow_id: str,
    request: EndpointChangeRequest,
    moniker: str,
    previous: str | None = None,
) -> bool:
    """Start one change under its id (False when that change already ran). Only the registry calls this:
    it names the change and tells the older one of the same validator that it is superseded."""
    attributes = TypedSearchAttributes(
        [SearchAttributePair(VALIDATOR, request.validator), SearchAttributePair(CLUSTER, settings.cluster_id)]
    )
    try:
        await client.start_workflow(
            endpoint_change.EndpointChangeWorkflow.run,
            request,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{moniker} moved to {request.endpoint}"
            if request.source != "manual"
            else f"manual: {moniker} -> {request.endpoint or '(chain)'}",
            search_attributes=attributes,
            # `peersync status` lists old -> new from the memo (visibility returns it; the input it does not).
            memo={"previous": previous, "endpoint": request.endpoint},
        )
    except WorkflowAlreadyStartedError:
        return False  # this change already ran to completion
    return True


class TemporalCalls:
    def __init__(self, settings: ActivityConfig, client: Client) -> None:
        self.settings = settings
        self.client = client

    def all(self) -> list[object]:
        return [
            self.enqueue_consumer_sync,
            self.start_endpoint_changes,
            self.set_override,
            self.acquire_rollout_slot,
        ]

    @activity.defn
    async def acquire_rollout_slot(self, inp: SlotCallInput) -> None:
        """Queue for a cluster-wide rollout slot; the first asker starts the slots workflow."""
        await ensure_rollout_slots(self.client, self.settings, rollout_slots.SlotRequest(holder=inp.holder))

    @activity.defn
    async def enqueue_consumer_sync(self, inp: SyncCallInput) -> None:
        """Hand a sync request to the consumer's ConsumerSyncWorkflow (started if need be) and return at
        once: the answer comes back as a `sync_done` signal, so no activity slot is held while it runs."""
        await self.client.start_workflow(
            consumer_sync.ConsumerSyncWorkflow.run,
            consumer_sync.ConsumerSyncState(
                consumer=inp.consumer, require_approval=self.settings.require_approval
            ),
            **_consumer_sync_start(self.settings, inp.consumer),
            start_signal="enqueue",
            start_signal_args=[stamped(inp.request, self.settings, inp.consumer)],
        )

    @activity.defn
    async def start_endpoint_changes(self, inp: StartChangesInput) -> list[str]:
        """One EndpointChangeWorkflow per change; a change that already ran is not repeated."""
        started = []
        for change in inp.changes:
            wf_id = change.change_id(self.settings.cluster_id)
            request = EndpointChangeRequest(
                validator=change.operator_address,
                endpoint=change.endpoint,
                source="manual" if change.source == "manual" else "registry",
                height=change.height,
                override=change.override,
                require_approval=change.require_approval,
            )
            if await start_endpoint_change(
                self.client, self.settings, wf_id, request, change.moniker, change.previous
            ):
                started.append(wf_id)
        return started

    @activity.defn
    async def set_override(self, inp: OverrideInput) -> None:
        handle = self.client.get_workflow_handle(registry_id(self.settings.cluster_id))
        await handle.execute_update("set_override", inp)
