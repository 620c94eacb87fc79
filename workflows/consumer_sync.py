"""ConsumerSyncWorkflow: one per consumer namespace; serialises and coalesces all work on that consumer.

Callers use the `sync` update (through update-with-start). A request waits for the first sync that
starts after it arrived, so N requests that arrive while a sync runs are all answered by ONE more sync.
The peers are recomputed from the chain at sync time; the ConfigMap is written only when it differs;
the rollout is keyed on the peer-set hash, so repeating a sync restarts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # temporal_calls as a module: it imports this module's workflow class, so a name import would loop.
    from activities import temporal_calls
    from activities.defs import PeersyncActivities
    from core.contracts import (
        NEEDS_APPROVAL,
        ConsumerRef,
        DesiredPeers,
        EndpointSnapshot,
        RegistryAnswer,
        RegistryAsk,
        SyncReply,
        SyncRequest,
        SyncResult,
    )
    from core.ids import rollout_slots_id
    from workflows import markdown, metrics, policies
    from workflows.activity_contracts import (
        AppliedPeersOut,
        CatchUpInput,
        CatchUpOutput,
        ConsumerInput,
        DialInput,
        DialOutput,
        PlanInput,
        PlanOutput,
        ProbePeersInput,
        ProbePeersOutput,
        ReadAppliedInput,
        RestartInput,
        RestartOutput,
        RestartWaitInput,
        RestartWaitOutput,
        SlotCallInput,
        WaitInput,
        WaitOutput,
        WriteInput,
        WriteOutput,
    )
    from workflows.failures import error_cause
    from workflows.local_steps import StepRefused, peers_to_probe, run_step
    from workflows.registry_ask import RegistryUnanswered, ask_registry
    from workflows.rollout_slots import SlotRelease, SlotRequest
    from workflows.search_attributes import CLUSTER, CONSUMER, PHASE

KEEP_RESULTS = 16
KEEP_ANSWERED = 256
# workflow.patched id: a new (not continued) run gives back any rollout slot held under its id, which only a
# terminated earlier run can hold; else the recreated sync's consumers would wait out the slot's lease.
RELEASE_STALE_SLOT = "release-stale-slot"
CATCH_UP_GATING = "catch-up-gating"  # workflow.patched id: wait_caught_up after a restart's rollout wait
# workflow.patched id: a batch whose requests carry no snapshot (sent by the previous release, or by hand)
# asks the registry for one; before it, compute_desired_peers queried the registry itself.
ASK_SNAPSHOT = "ask-registry-snapshot"
# workflow.patched id: the short steps (compute, read, probe, write, restart) try one local attempt first, so
# they share one workflow task instead of one each (workflows/local_steps.py).
LOCAL_STEPS = "sync-local-steps"
# workflow.patched id: the rollout slot is asked with a signal from the workflow itself when the slots
# workflow exists (the activity, which can start it, only when it does not): no activity round trip.
SLOT_BY_SIGNAL = "slot-ask-by-signal"
# workflow.patched id: the rollout slot is asked by a local activity (signal-with-start of the slots workflow)
# in the task that wrote the peers: the ask leaves at once, not when the task completes, and no "signal
# delivered" event wakes the sync for a task of its own while the slots workflow decides.
SLOT_BY_LOCAL = "slot-ask-local"
# workflow.patched id: a batch with a request that expects a restart (an EndpointChange's) asks its rollout
# slot at the sync's start, so the slots workflow's round trip overlaps the reads and the write; a sync that
# needs no restart after all gives the slot back once granted (a grant never stays in flight).
SLOT_EARLY = "slot-ask-early"
# workflow.patched id: a sync's reads (desired peers, applied peers, probe of the new ones) are one local
# step (plan_sync) instead of three: two local-activity round trips fewer in the sync's first task.
ONE_READ = "sync-one-read"
# workflow.patched id: after a restart, the rollout wait and the catch-up wait run as ONE activity
# (wait_restarted) instead of wait_rollout then wait_caught_up: one workflow task and dispatch fewer.
ONE_WAIT = "restart-one-wait"


class ConsumerSyncState(BaseModel):
    consumer: ConsumerRef
    require_approval: bool = False
    completed: int = 0
    results: dict[int, SyncResult] = Field(default_factory=dict)
    pending: list[SyncRequest] = Field(default_factory=list)
    answered: dict[str, int] = Field(default_factory=dict, description="request id -> sync that answered it")
    snapshot: EndpointSnapshot | None = Field(None, description="the newest registry snapshot applied")


@workflow.defn(failure_exception_types=[ValidationError])
class ConsumerSyncWorkflow:
    @workflow.init
    def __init__(self, state: ConsumerSyncState) -> None:
        self.state = state
        self.running: int | None = None
        self.step = "idle"
        self._slot_granted = False
        self._current: SyncResult | None = None
        self._releases: set[asyncio.Future[None]] = set()
        self._in_flight: set[str] = set()  # request ids of the batch being synced (a re-ask is not new work)
        self.answers: dict[str, RegistryAnswer] = {}
        self._local = False  # whether this run's short steps try a local attempt first (LOCAL_STEPS)
        self._early = False  # asked its rollout slot at the sync's start, not yet handed on (SLOT_EARLY)
        self._asking: asyncio.Future[None] | None = None  # that early ask's local activity

    @workflow.run
    async def run(self, state: ConsumerSyncState) -> None:
        ref = self.state.consumer
        workflow.upsert_search_attributes(
            [CLUSTER.value_set(ref.cluster_id), CONSUMER.value_set(ref.chain_id), PHASE.value_set("idle")]
        )
        if workflow.info().continued_run_id is None and workflow.patched(RELEASE_STALE_SLOT):
            self._releases.add(asyncio.ensure_future(self._release_stale_slot()))
        while True:
            await workflow.wait_condition(
                lambda: bool(self.state.pending) or workflow.info().is_continue_as_new_suggested()
            )
            if not self.state.pending:
                # A `sync` update arriving here waits for a sync of this loop: waiting only for the handlers
                # to finish would deadlock, so new work ends the wait and is served before continuing as new.
                # Nothing awaits between this check and continue_as_new, so no request is left behind:
                # `pending` (enqueued requests) travels in the state, and no update is still waiting.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() or bool(self.state.pending)
                )
                if not self.state.pending:
                    workflow.continue_as_new(self.state)
            batch, self.state.pending = self.state.pending, []
            self._in_flight = {r.request_id for r in batch if r.request_id is not None}
            self._follow_senders(batch)
            number = self.state.completed + 1
            self.running = number
            try:
                result = await self._sync_holding(number, batch)
            except (ActivityError, RegistryUnanswered, StepRefused) as exc:
                result = self._failed(number, exc)
            self.state.results[number] = result
            for old in [n for n in self.state.results if n <= number - KEEP_RESULTS]:
                del self.state.results[old]
            self.state.completed, self.running = number, None
            outcome = self._outcome(result)
            metrics.sync_finished(self.state.consumer.chain_id, outcome)
            self._show("idle", f"sync #{number}: {self._describe(result)}")
            workflow.logger.log(
                logging.WARNING if result.error else logging.INFO,
                "sync #%d of %s: %s",
                number,
                self.state.consumer.namespace,
                self._describe(result),
                extra={
                    "consumer": self.state.consumer.namespace,
                    "chain_id": self.state.consumer.chain_id,
                    "result": outcome,
                    "peers_hash": result.peers_hash,
                },
            )
            await self._reply(batch, result)
            self._in_flight = set()  # only now: until every id of the batch is in `answered`

    async def _release_stale_slot(self) -> None:
        slots = workflow.get_external_workflow_handle(rollout_slots_id(self.state.consumer.cluster_id))
        try:
            await slots.signal("release", SlotRelease(holder=workflow.info().workflow_id))
        except Exception as exc:  # no slots workflow yet: no slot can be held
            workflow.logger.debug("no stale rollout slot to give back: %s", exc)

    def _follow_senders(self, batch: list[SyncRequest]) -> None:
        """The newest settings and consumer labels among the requests win over those this run started with."""
        for req in batch:
            if req.require_approval is not None:
                self.state.require_approval = req.require_approval
            if req.consumer is not None and req.consumer.namespace == self.state.consumer.namespace:
                self.state.consumer = req.consumer

    async def _reply(self, batch: list[SyncRequest], result: SyncResult) -> None:
        for req in batch:
            if req.request_id is None:
                continue
            self.state.answered[req.request_id] = result.sync_number
            if req.reply_to is not None:
                await self._send_reply(req, result)
        while len(self.state.answered) > KEEP_ANSWERED:
            del self.state.answered[next(iter(self.state.answered))]

    async def _send_reply(self, req: SyncRequest, result: SyncResult) -> None:
        assert req.reply_to is not None and req.request_id is not None
        try:
            await workflow.get_external_workflow_handle(req.reply_to).signal(
                "sync_done", SyncReply(request_id=req.request_id, result=result)
            )
        except Exception as exc:  # the asker is gone (cancelled, terminated): nobody to tell
            workflow.logger.info("cannot answer %s: %s", req.reply_to, exc)

    def _failed(self, number: int, exc: ActivityError | RegistryUnanswered | StepRefused) -> SyncResult:
        reason = error_cause(exc)  # a wrapper's cause, else the exception's own text
        if self._current is not None and self._current.sync_number == number:
            return self._current.model_copy(update={"error": reason})
        return SyncResult(
            consumer=self.state.consumer, sync_number=number, changed=False, old_peers=[], new_peers=[],
            peers_hash="", restarted=False, error=reason,
        )  # fmt: skip

    @workflow.signal(description="Ask for a sync; the result is signalled back to `reply_to` as `sync_done`.")
    async def enqueue(self, request: SyncRequest) -> None:
        done = self.state.answered.get(request.request_id or "")
        if done is not None and done in self.state.results:
            await self._send_reply(request, self.state.results[done])  # a retried ask: answer again
        elif request.request_id is None or (
            request.request_id not in self._in_flight
            and all(r.request_id != request.request_id for r in self.state.pending)
        ):  # a re-ask of a request pending or being synced now is answered by that sync: not queued again
            self.state.pending.append(request)

    @workflow.signal(description="The registry answers this sync's ask for its snapshot.")
    def registry_answer(self, answer: RegistryAnswer) -> None:
        self.answers[answer.request_id] = answer

    @workflow.update
    async def sync(self, request: SyncRequest) -> SyncResult:
        """Wait for the first sync that starts after this request; return its result."""
        target = (self.running or self.state.completed) + 1
        self.state.pending.append(request)
        await workflow.wait_condition(lambda: self.state.completed >= target)
        return self.state.results[target]

    @workflow.query
    def status(self) -> ConsumerSyncState:
        return self.state

    def _show(self, step: str, details: str) -> None:
        self.step = step
        workflow.upsert_search_attributes([PHASE.value_set(step)])
        ref = self.state.consumer  # details quote chain and cluster text (messages, monikers): escaped
        workflow.set_current_details(
            f"**{markdown.cell(ref.namespace)}** ({markdown.cell(ref.chain_id)}): {markdown.cell(details)}"
        )

    @staticmethod
    def _outcome(result: SyncResult) -> str:
        if result.error:
            return "failed"
        if result.restarted:
            return "restarted"
        if result.live:
            return "live"
        if result.rollout == NEEDS_APPROVAL:
            return "awaiting_approval"
        return "written" if result.changed else "unchanged"

    @staticmethod
    def _describe(result: SyncResult) -> str:
        if result.error:
            return f"failed: {result.error}"
        if not result.changed:
            return "peers already correct"
        then = "restarted" if result.restarted else "no restart"
        if result.live:
            then = f"live ({result.live})" + (", restarted" if result.restarted else "")
        if result.caught_up:
            then += f", {result.caught_up}"
        return f"{len(result.new_peers)} peers written, {then}"

    async def _sync_holding(self, number: int, batch: list[SyncRequest]) -> SyncResult:
        """`_sync`, with the rollout slot asked at its start when a request expects a restart (and no approval
        holds it back): the slot's round trip then runs alongside the reads and the write, not after them."""
        self._early = (
            any(r.expect_restart for r in batch)
            and not self._awaits_approval(batch)
            and workflow.patched(SLOT_EARLY)
        )
        if self._early:
            # Alongside the first step (its local activity runs beside compute_desired_peers).
            self._asking = asyncio.ensure_future(self._ask_slot())
        try:
            return await self._sync(number, batch)
        finally:
            if self._early:  # no restart after all (or a failure): the slot is not needed
                self._early = False
                if await self._asked():
                    # A grant still in flight would be taken by a later sync's ask: wait for it first.
                    await workflow.wait_condition(lambda: self._slot_granted)
                self._release_slot()

    def _awaits_approval(self, batch: list[SyncRequest]) -> bool:
        """A restart of this batch needs an approval it does not carry: the worker's setting, or the
        operator's ask for one of its requests (`peersync sync --require-approval`)."""
        asked = self.state.require_approval or any(r.ask_approval for r in batch)
        return asked and not any(r.approved for r in batch)

    async def _asked(self) -> bool:
        """Whether the early ask for a slot went out (it fails only once its local activity's retries run out:
        the sync fails with that reason, and the release that follows also takes any ask out of the queue)."""
        assert self._asking is not None
        try:
            await self._asking
        except ActivityError as exc:
            workflow.logger.warning("asking for a rollout slot failed: %s", error_cause(exc))
            return False
        return True

    async def _sync(self, number: int, batch: list[SyncRequest]) -> SyncResult:
        ref = self.state.consumer
        self._show("computing", f"sync #{number} for {len(batch)} request(s)")
        inp = ConsumerInput(consumer=ref, pins=await self._snapshot(number, batch))
        self._local = self._local or workflow.patched(LOCAL_STEPS)
        forced = {host for r in batch for host in r.forced_hosts}
        if self._local and workflow.patched(ONE_READ):
            plan: PlanOutput = await run_step(
                PeersyncActivities.plan_sync,
                PlanInput(consumer=ref, pins=inp.pins, forced_hosts=sorted(forced)),
                policies.SYNC_PLAN,
                summary=f"peers of {ref.chain_id}, ConfigMap in {ref.namespace}",
                local=True,
            )
            desired, applied = plan.desired, plan.applied
            peers, kept = _gated(desired, applied, plan.unreachable)
        else:
            desired, applied, peers, kept = await self._read_and_gate(ref, inp, forced)
        return await self._apply(number, batch, desired, applied, peers, kept)

    async def _read_and_gate(
        self, ref: ConsumerRef, inp: ConsumerInput, forced: set[str]
    ) -> tuple[DesiredPeers, AppliedPeersOut, list[str], list[str]]:
        """The reads as three steps (histories recorded before ONE_READ)."""
        desired: DesiredPeers = await run_step(
            PeersyncActivities.compute_desired_peers,
            inp,
            policies.CHAIN_READ,
            summary=f"peers of {ref.chain_id}",
            local=self._local,
        )
        applied: AppliedPeersOut = await run_step(
            PeersyncActivities.read_applied_peers,
            # The desired node ids tell peersync's entries from the operator's, which are never touched.
            ReadAppliedInput(consumer=ref, desired=desired.peers),
            policies.KUBE_WRITE,
            summary=f"ConfigMap in {ref.namespace}",
            local=self._local,
        )
        desired = desired.keeping(applied.peers)  # a validator with no endpoint in effect keeps its entry
        peers, kept = await self._gate_new_peers(desired, applied, forced)
        return desired, applied, peers, kept

    async def _apply(
        self,
        number: int,
        batch: list[SyncRequest],
        desired: DesiredPeers,
        applied: AppliedPeersOut,
        peers: list[str],
        kept: list[str],
    ) -> SyncResult:
        ref = self.state.consumer
        result = SyncResult(
            consumer=ref,
            sync_number=number,
            changed=set(peers) != set(applied.peers) or bool(applied.problems),
            old_peers=applied.peers,
            new_peers=peers,
            kept_unreachable=kept,
            peers_hash="",
            restarted=False,
        )
        self._current = result
        self._show("writing", f"{len(peers)} peers")
        written: WriteOutput = await run_step(
            PeersyncActivities.write_peers,
            WriteInput(consumer=ref, peers=peers),
            policies.KUBE_WRITE,
            summary=f"write {len(peers)} peers",
            local=self._local,
        )
        result.peers_hash = written.peers_hash
        if applied.strategy != "restart" and applied.workload_hash != written.peers_hash:
            # The nodes take the new peers now; `live` ends here, `live-then-restart` also restarts them.
            # dial_peers REPLACES the node's persistent list: hand it the whole list, the operator's too.
            everyone = written.all_peers or peers  # histories before all_peers existed: peersync's alone
            await self._dial(result, everyone, record=applied.strategy == "live", verify=peers)
            if applied.strategy == "live":
                return result
        if applied.workload_hash == written.peers_hash:
            # No restart, but a rollout onto this set may have died earlier: the wait says so (at once if fine).
            await self._wait(result)
            return result
        if self._awaits_approval(batch):
            result.rollout = NEEDS_APPROVAL
            return result
        if self._early:
            self._show("waiting-for-slot", "another consumer of this cluster is rolling out")
            assert self._asking is not None
            await self._asking  # its failure fails the sync with its reason (and _sync_holding releases)
            self._early = False  # from here the roll-out's own `finally` gives the slot back
            await workflow.wait_condition(lambda: self._slot_granted)
        else:
            await self._acquire_slot()
        try:
            await self._roll_out(result)
        finally:
            self._release_slot()
        return result

    async def _snapshot(self, number: int, batch: list[SyncRequest]) -> EndpointSnapshot | None:
        """The registry's pins this sync applies: the newest snapshot the requests carry, never one older than
        the snapshot already applied (a late request from an older change is ignored); a batch that carries
        none asks the registry. None only for histories recorded before ASK_SNAPSHOT."""
        offered = [r.snapshot for r in batch if r.snapshot is not None]
        if not offered:
            if not workflow.patched(ASK_SNAPSHOT):
                return None
            me = workflow.info().workflow_id
            self._show("asking-registry", f"sync #{number}: asking the registry for its snapshot (pins)")
            ask = RegistryAsk(request_id=f"{me}/sync-{number}", reply_to=me)
            answer = await ask_registry(self.state.consumer.cluster_id, self.answers, ask)
            self.state.snapshot = answer.snapshot  # just asked: the newest there is
            return answer.snapshot
        for snapshot in offered:
            if snapshot.newer_than(self.state.snapshot):
                self.state.snapshot = snapshot
            elif snapshot != self.state.snapshot and self.state.snapshot is not None:
                workflow.logger.info(
                    "an older registry snapshot (v%d) ignored: v%d already applied",
                    snapshot.version,
                    self.state.snapshot.version,
                )
        return self.state.snapshot

    async def _roll_out(self, result: SyncResult) -> None:
        ref = self.state.consumer
        began = workflow.now()
        self._show("restarting", f"peers {result.peers_hash}")
        restarted: RestartOutput = await run_step(
            PeersyncActivities.restart_workload,
            RestartInput(
                consumer=ref,
                peers_hash=result.peers_hash,
                restarted_at=workflow.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
            policies.KUBE_WRITE,
            summary=f"roll {ref.namespace} onto {result.peers_hash}",
            local=self._local,
        )
        result.restarted = restarted.restarted
        if result.restarted and workflow.patched(ONE_WAIT):
            # One activity waits for both: say so, or a long catch-up would read as a slow rollout.
            self._show("rolling-out", f"{restarted.message}; then waiting for the nodes to catch up")
            await self._wait_restarted(result, began)
            return
        self._show("rolling-out", restarted.message)
        waited = await self._wait(result)
        if result.restarted:
            self._rolled(result, waited)
            # Gated: histories recorded before catch-up gating have no such activity after the rollout wait.
            if workflow.patched(CATCH_UP_GATING):
                await self._catch_up(result, began)

    async def _wait_restarted(self, result: SyncResult, began: datetime) -> None:
        """The rollout, then catch-up gating (exactly as _wait then _catch_up judge them), in one activity:
        the slot is held until every node signs again, one workflow task and one dispatch fewer."""
        ref = self.state.consumer
        try:
            done: RestartWaitOutput = await workflow.execute_activity_method(
                PeersyncActivities.wait_restarted,
                RestartWaitInput(
                    rollout=WaitInput(consumer=ref, peers_hash=result.peers_hash),
                    catch_up=CatchUpInput(consumer=ref),
                ),
                summary=f"rollout of {ref.namespace}, then its nodes catching up",
                **policies.RESTART_WAIT.options(),
            )
        except ActivityError as exc:
            rolled = _rolled_before(exc)
            if rolled is not None:  # the catch-up failed after a complete rollout: report and count it
                self._rolled(result, rolled)
            raise
        self._rolled(result, done.rollout)
        result.caught_up = done.caught_up.message
        metrics.node_down(ref.chain_id, workflow.now() - began)

    def _rolled(self, result: SyncResult, rolled: WaitOutput) -> None:
        result.rollout = rolled.message
        took = None if rolled.seconds is None else timedelta(seconds=rolled.seconds)
        metrics.restarted(self.state.consumer.chain_id, took)

    async def _catch_up(self, result: SyncResult, began: datetime) -> None:
        """A Ready pod is not a signing node: hold the rollout slot (released by the caller) until every node
        has caught up with the chain, so the next consumer's restart never overlaps this one's downtime."""
        ref = self.state.consumer
        self._show("catching-up", f"{result.rollout}; waiting for the nodes to catch up")
        caught: CatchUpOutput = await workflow.execute_activity_method(
            PeersyncActivities.wait_caught_up,
            CatchUpInput(consumer=ref),
            summary=f"nodes of {ref.namespace} catching up",
            **policies.CATCH_UP.options(),
        )
        result.caught_up = caught.message
        metrics.node_down(ref.chain_id, workflow.now() - began)

    async def _dial(
        self, result: SyncResult, peers: list[str], record: bool, verify: list[str] | None = None
    ) -> None:
        ref = self.state.consumer
        self._show("dialing", f"dial_peers on the nodes of {ref.namespace}")
        dialed: DialOutput = await workflow.execute_activity_method(
            PeersyncActivities.dial_peers,
            DialInput(consumer=ref, peers=peers, peers_hash=result.peers_hash, record=record, verify=verify),
            summary=f"dial {len(peers)} peers live in {ref.namespace}",
            **policies.LIVE_DIAL.options(),
        )
        result.live = dialed.message

    async def _wait(self, result: SyncResult) -> WaitOutput:
        ref = self.state.consumer
        waited: WaitOutput = await workflow.execute_activity_method(
            PeersyncActivities.wait_rollout,
            WaitInput(consumer=ref, peers_hash=result.peers_hash),
            summary=f"rollout of {ref.namespace}",
            **policies.ROLLOUT_WAIT.options(),
        )
        result.rollout = waited.message
        return waited

    async def _acquire_slot(self) -> None:
        """Wait for one of the cluster's rollout slots (PEERSYNC_MAX_PARALLEL_ROLLOUTS)."""
        self._slot_granted = False
        self._show("waiting-for-slot", "another consumer of this cluster is rolling out")
        if workflow.patched(SLOT_BY_LOCAL):
            await self._ask_slot()
            await workflow.wait_condition(lambda: self._slot_granted)
            return
        if workflow.patched(SLOT_BY_SIGNAL):
            slots = workflow.get_external_workflow_handle(rollout_slots_id(self.state.consumer.cluster_id))
            # Signals are not delivered in the order sent: a release of this holder (a stale slot at a new
            # run's start, the previous sync's) landing after this ask would drop the ask from the queue.
            await asyncio.gather(*self._releases, return_exceptions=True)
            self._releases = {f for f in self._releases if not f.done()}
            try:
                await slots.signal("acquire", SlotRequest(holder=workflow.info().workflow_id))
            except Exception as exc:  # no slots workflow yet: the activity below starts it with the ask
                workflow.logger.info("rollout slots not running (%s): asking through an activity", exc)
            else:
                await workflow.wait_condition(lambda: self._slot_granted)
                return
        await workflow.execute_activity_method(
            temporal_calls.TemporalCalls.acquire_rollout_slot,
            SlotCallInput(holder=workflow.info().workflow_id),
            summary="ask for a rollout slot",
            **policies.TEMPORAL_CALL.options(),
        )
        await workflow.wait_condition(lambda: self._slot_granted)

    async def _ask_slot(self) -> None:
        """Queue for a rollout slot by a local activity (signal-with-start of the slots workflow): the ask
        leaves now, not when the task completes; `slot_granted` answers it."""
        self._slot_granted = False
        # The same ordering concern as in _acquire_slot: the releases this run sent must land before the ask.
        await asyncio.gather(*self._releases, return_exceptions=True)
        self._releases = {f for f in self._releases if not f.done()}
        await workflow.execute_local_activity_method(
            temporal_calls.TemporalCalls.acquire_rollout_slot,
            SlotCallInput(holder=workflow.info().workflow_id),
            summary="ask for a rollout slot",
            **policies.TEMPORAL_CALL.local_options(),
        )

    def _release_slot(self) -> None:
        slots = workflow.get_external_workflow_handle(rollout_slots_id(self.state.consumer.cluster_id))
        # Fire and forget: if the slots workflow is gone there is nothing to release, and the lease expires.
        self._releases.add(
            asyncio.ensure_future(slots.signal("release", SlotRelease(holder=workflow.info().workflow_id)))
        )

    @workflow.signal(description="The cluster's RolloutSlotsWorkflow granted this consumer a rollout slot.")
    def slot_granted(self) -> None:
        self._slot_granted = True

    async def _gate_new_peers(
        self, desired: DesiredPeers, applied: AppliedPeersOut, forced: set[str]
    ) -> tuple[list[str], list[str]]:
        """A new endpoint that does not answer never replaces a working old one (invariant 5), unless an
        operator approved it past its failed probe (`forced`: its host)."""
        new = peers_to_probe(desired.peers, applied.peers, forced)
        unreachable: dict[str, str] = {}
        if new:
            probed: ProbePeersOutput = await run_step(
                PeersyncActivities.probe_peers,
                ProbePeersInput(peers=new),
                policies.PEER_PROBE,
                summary=f"TCP {len(new)} new peer(s)",
                local=self._local,
            )
            unreachable = probed.unreachable
        return _gated(desired, applied, unreachable)


def _gated(
    desired: DesiredPeers, applied: AppliedPeersOut, unreachable: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The peers to write and the new ones kept out: an unreachable new peer leaves its node's old entry."""
    old_by_node = {p.split("@", 1)[0]: p for p in applied.peers}
    peers, kept = [], []
    for peer in desired.peers:
        if peer not in unreachable:
            peers.append(peer)
            continue
        kept.append(peer)
        old = old_by_node.get(peer.split("@", 1)[0])
        if old is not None:
            peers.append(old)
    return sorted(peers), kept


def _rolled_before(exc: ActivityError) -> WaitOutput | None:
    """The rollout wait_restarted completed before its catch-up failed (the failure's details), if any."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.details:
        try:
            return WaitOutput.model_validate(cause.details[0])
        except ValidationError:
            return None
    return None
