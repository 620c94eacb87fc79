"""RolloutSlotsWorkflow: one per cluster; at most `capacity` consumer rollouts at a time (invariant 4),
so an operator's validators are never all restarting together.

Holders ask with the `acquire` signal (sent with signal-with-start, so the first asker starts it) and are
answered with a `slot_granted` signal; they give the slot back with `release`. A holder that vanishes
(terminated workflow) loses its slot when its lease runs out, so a slot can never leak for good.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field, ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.search_attributes import CLUSTER

DEFAULT_LEASE = timedelta(minutes=45)


class SlotRequest(BaseModel):
    holder: str = Field(description="workflow id to signal `slot_granted`")
    lease_seconds: float = Field(DEFAULT_LEASE.total_seconds(), gt=0)


class SlotRelease(BaseModel):
    holder: str


class SlotsState(BaseModel):
    cluster_id: str
    capacity: int = Field(1, ge=1)
    holders: dict[str, datetime] = Field(default_factory=dict, description="holder -> lease end")
    queue: list[SlotRequest] = Field(default_factory=list)
    granted: int = 0


@workflow.defn(failure_exception_types=[ValidationError])
class RolloutSlotsWorkflow:
    @workflow.init
    def __init__(self, state: SlotsState) -> None:
        self.state = state

    @workflow.run
    async def run(self, state: SlotsState) -> None:
        workflow.upsert_search_attributes([CLUSTER.value_set(self.state.cluster_id)])
        while True:
            self._expire()
            await self._grant()
            self._show()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            try:
                await workflow.wait_condition(
                    self._can_grant, timeout=self._next_expiry(), timeout_summary="lease expiry"
                )
            except TimeoutError:
                pass

    def _can_grant(self) -> bool:
        return bool(self.state.queue) and len(self.state.holders) < self.state.capacity

    def _next_expiry(self) -> timedelta | None:
        if not self.state.holders:
            return None
        return max(min(self.state.holders.values()) - workflow.now(), timedelta(seconds=1))

    def _expire(self) -> None:
        now = workflow.now()
        for holder, until in list(self.state.holders.items()):
            if until <= now:
                workflow.logger.warning("rollout slot of %s expired without release", holder)
                del self.state.holders[holder]

    async def _grant(self) -> None:
        while self._can_grant():
            req = self.state.queue.pop(0)
            self.state.holders[req.holder] = workflow.now() + timedelta(seconds=req.lease_seconds)
            self.state.granted += 1
            try:
                await workflow.get_external_workflow_handle(req.holder).signal("slot_granted")
            except Exception as exc:  # the holder is gone: free its slot at once
                workflow.logger.warning("cannot grant a rollout slot to %s: %s", req.holder, exc)
                del self.state.holders[req.holder]

    def _show(self) -> None:
        holders = ", ".join(sorted(self.state.holders)) or "none"
        workflow.set_current_details(
            f"{len(self.state.holders)}/{self.state.capacity} rollouts in flight ({holders}); "
            f"{len(self.state.queue)} waiting; {self.state.granted} granted in all"
        )

    @workflow.signal(description="Ask for a rollout slot; answered with the signal `slot_granted`.")
    def acquire(self, req: SlotRequest) -> None:
        if req.holder not in self.state.holders and all(q.holder != req.holder for q in self.state.queue):
            self.state.queue.append(req)
        elif req.holder in self.state.holders:
            self.state.queue.insert(0, req)  # a retried ask from a holder: grant again at once
            del self.state.holders[req.holder]

    @workflow.signal(description="Give a rollout slot back (or leave the queue).")
    def release(self, rel: SlotRelease) -> None:
        self.state.holders.pop(rel.holder, None)
        self.state.queue = [q for q in self.state.queue if q.holder != rel.holder]

    @workflow.signal(
        description="Set the number of rollouts allowed at once (PEERSYNC_MAX_PARALLEL_ROLLOUTS)."
    )
    def configure(self, capacity: int) -> None:
        self.state.capacity = max(1, capacity)

    @workflow.query(description="Holders, queue and capacity.")
    def slots(self) -> SlotsState:
        return self.state
