"""EndpointChangeWorkflow: one validator moved; bring every consumer this cluster runs with it up to date.

validate → discover → probe (the gate: blocked until approved or cancelled if it never answers) →
approval (when required) → one ConsumerSync per affected consumer → summary. Pause and cancel act at
step boundaries; a ConfigMap is never left half-written because each write is one compare-and-replace.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # temporal_calls as a module: it imports this module's workflow class, so a name import would loop.
    from activities import temporal_calls
    from activities.defs import PeersyncActivities
    from core.contracts import (
        FINAL_PHASES,
        AffectedConsumer,
        ApproveRequest,
        CancelRequest,
        ChangeCommit,
        ConsumerRef,
        ConsumerStep,
        EndpointChangeRequest,
        EndpointChangeResult,
        EndpointSnapshot,
        HoldAsk,
        Phase,
        ProbeStatus,
        Progress,
        RegistryAnswer,
        RegistryAsk,
        SupersededNotice,
        SyncReply,
        SyncRequest,
        SyncResult,
        ValidatedChange,
    )
    from core.ids import cluster_of_task_queue, registry_id
    from workflows import markdown, metrics, policies, probe_rounds
    from workflows.activity_contracts import (
        DiscoverInput,
        OverrideInput,
        ProbeInput,
        SyncCallInput,
        ValidateInput,
    )
    from workflows.failures import error_cause
    from workflows.registry_ask import RegistryUnanswered, ask_registry
    from workflows.search_attributes import CLUSTER, CONSUMER, PHASE, VALIDATOR
    from workflows.sync_wait import NoReply, ask_until_answered


class _Superseded(Exception):
    def __init__(self, by: str) -> None:
        super().__init__(by)
        self.by = by


TOO_LATE = frozenset({*FINAL_PHASES, Phase.SYNCING})
# Phases worth a search-attribute update; the quick ones in between show in the details and the query.
INDEXED_PHASES = frozenset({*FINAL_PHASES, Phase.BLOCKED, Phase.AWAITING_APPROVAL, Phase.SYNCING})
# The probe can take its whole budget (minutes): from it on a change must be listed (`peersync status`,
# the UI's filters, the upgrade replay check). Changes that passed it unindexed replay without the upsert.
INDEX_PROBING = "index-probing"
# Consumers are asked one at a time, with a pause/cancel boundary between them, and each answer is waited
# for with re-asks and an end (workflows/sync_wait.py). Changes that started syncing all at once replay so.
IN_TURN = "consumers-in-turn"
# Before syncing, the change commits itself to the registry, which refuses it when a newer change of the
# validator exists, pins its override, and answers with the snapshot the syncs then carry. Changes recorded
# before it pinned their override through an activity and let each sync query the registry.
REGISTRY_COMMIT = "registry-commit"
# A chain-driven change cancelled by an operator asks the registry to hold the endpoint before it, so that
# reconcile and later refreshes do not apply what was cancelled. Changes recorded before it did not.
HOLD_ON_CANCEL = "hold-on-cancel"
# The probe's retries are attempts the workflow schedules itself, so attempts, the last error and the
# deadline show while it probes. Changes recorded before it ran the retries as one retried activity.
PROBE_ROUNDS = "probe-rounds"


def _probe_budget(change: ValidatedChange) -> policies.StepBudget:
    """The worker's PEERSYNC_PROBE_BUDGET, read from history (the validate result), else the default."""
    if change.probe_budget_seconds is None:
        return policies.PROBE
    return policies.PROBE.with_total(timedelta(seconds=change.probe_budget_seconds))


@workflow.defn(failure_exception_types=[ValidationError])
class EndpointChangeWorkflow:
    @workflow.init
    def __init__(self, request: EndpointChangeRequest) -> None:
        self.request = request
        self.progress = Progress(
            phase=Phase.VALIDATING, validator=request.validator, endpoint=request.endpoint
        )
        self.approved = False
        self.cancel_request: CancelRequest | None = None
        self.replies: dict[str, SyncResult] = {}
        self.superseded_by: str | None = None
        self.forced_host: str | None = None
        self.answers: dict[str, RegistryAnswer] = {}
        self.snapshot: EndpointSnapshot | None = None
        self._in_turn = False  # consumers asked one at a time (IN_TURN): cancel is honoured between them
        self._attributes: list[SearchAttributeUpdate[str]] = []

    # ---- human control ---------------------------------------------------------------------------------

    @workflow.signal(description="Hold at the next step boundary.")
    def pause(self) -> None:
        self.progress.paused = True
        self._render()

    @workflow.signal(description="Continue after pause.")
    def resume(self) -> None:
        self.progress.paused = False
        self._render()

    @workflow.signal(
        description="Allow the restarts (PEERSYNC_REQUIRE_APPROVAL) or force past a failed probe."
    )
    def approve(self, req: ApproveRequest | None = None) -> None:
        # Only what is waiting can be approved: an early approve must not silently force a probe that
        # has not failed yet past the `blocked` phase the operator never saw.
        if self.progress.phase in (Phase.BLOCKED, Phase.AWAITING_APPROVAL):
            self.approved = True
            # Shown as received at once: a pause holds the change in this phase until resumed, and
            # `awaiting-approval (paused)` would read as if the approval were lost. Query and UI state only
            # (no command), so recorded runs replay alike; the next step boundary sets the phase again.
            if self.progress.phase == Phase.BLOCKED:
                failed = (self.progress.reason or "").removesuffix("; approve to force, or cancel")
                self.progress.reason = f"approved: forced past the failed probe ({failed})"
            else:
                self.progress.reason = "approved: the restarts may go"
            self.progress.phase = Phase.APPROVED
        elif self.progress.phase == Phase.APPROVED:
            pass  # a second approve of the same wait: already received
        else:
            self.progress.reason = (
                f"approve ignored: nothing awaits approval in phase {self.progress.phase.value}"
            )
        self._render()

    @workflow.update(
        description="Stop before any further change: before the next consumer once syncing (the one being "
        "synced finishes); refused when nothing is left to stop."
    )
    def cancel(self, req: CancelRequest) -> str:
        self.cancel_request = req
        if self.progress.phase == Phase.SYNCING:
            return f"cancelling before the next consumer (the one being synced finishes first): {req.reason}"
        return f"cancelling at the next step boundary: {req.reason}"

    @cancel.validator
    def _cancel_allowed(self, req: CancelRequest) -> None:
        phase = self.progress.phase
        if phase == Phase.SYNCING and self._in_turn:
            if not any(c.step == "pending" for c in self.progress.consumers):
                raise ValueError("too late to cancel: every consumer has already been asked to sync")
        elif phase in TOO_LATE:
            raise ValueError(f"too late to cancel: the change is {phase.value}")

    @workflow.signal(description="A newer change of this validator started; ends this one before it syncs.")
    def superseded(self, notice: SupersededNotice) -> None:
        if self.progress.phase not in TOO_LATE:  # once syncing, finish: the syncs read the chain anyway
            self.superseded_by = notice.by

    @workflow.signal(description="The registry answers this change's commit (its snapshot, or a refusal).")
    def registry_answer(self, answer: RegistryAnswer) -> None:
        self.answers[answer.request_id] = answer

    @workflow.signal(description="A ConsumerSync workflow answers a sync this change asked for.")
    def sync_done(self, reply: SyncReply) -> None:
        self.replies[reply.request_id] = reply.result

    @workflow.query(name="progress", description="Phase and one row per affected consumer.")
    def progress_query(self) -> Progress:
        return self.progress

    # ---- the steps -------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: EndpointChangeRequest) -> EndpointChangeResult:
        cluster = cluster_of_task_queue(workflow.info().task_queue)
        self._attributes.append(CLUSTER.value_set(cluster))
        try:
            return await self._run(cluster)
        except _Superseded as exc:
            self._set_phase(Phase.SUPERSEDED, f"superseded by {exc.by}")
            return EndpointChangeResult(
                validator=self.request.validator,
                moniker=self.progress.validator,
                endpoint=self.progress.endpoint or self.request.endpoint or "",
                phase=Phase.SUPERSEDED,
                consumers=[],
                skipped=self.progress.skipped,
            )
        except ApplicationError as exc:
            if exc.type == policies.OPERATOR_CANCELLED:
                self._set_phase(Phase.CANCELLED, exc.message)
                await self._hold_after_cancel(cluster)
            else:
                self._set_phase(Phase.FAILED, exc.message)
            raise
        except ActivityError as exc:
            cause = error_cause(exc)
            self._set_phase(Phase.FAILED, cause)
            raise ApplicationError(cause, type="StepFailed", non_retryable=True) from exc
        except asyncio.CancelledError:
            self._set_phase(Phase.CANCELLED, "cancelled from Temporal")
            raise

    async def _run(self, cluster: str) -> EndpointChangeResult:
        # Validate, discover and probe are short reads: local activities, one history marker each, no
        # extra workflow tasks (history per change stays small; see bench/RESULTS.md).
        change = await workflow.execute_local_activity_method(
            PeersyncActivities.validate_change,
            ValidateInput(request=self.request),
            summary=f"validate {self.request.validator} {self.request.endpoint or '(chain)'}",
            **policies.CHAIN_READ.local_options(),
        )
        self.progress.validator, self.progress.endpoint = change.moniker, change.endpoint
        self._attributes.append(VALIDATOR.value_set(change.operator_address))
        await self._boundary(Phase.DISCOVERING)
        discovery = await workflow.execute_local_activity_method(
            PeersyncActivities.discover_affected_consumers,
            DiscoverInput(operator_address=change.operator_address),
            summary=f"consumers with {change.moniker}",
            **policies.CHAIN_READ.local_options(),
        )
        self.progress.skipped = discovery.skipped
        self.progress.consumers = [
            ConsumerStep(namespace=a.consumer.namespace, chain_id=a.consumer.chain_id)
            for a in discovery.affected
        ]
        if discovery.affected:
            self._attributes.append(
                CONSUMER.value_set(",".join(dict.fromkeys(a.consumer.chain_id for a in discovery.affected)))
            )
        await self._boundary(Phase.PROBING)
        await self._probe(change, discovery.affected)
        # The worker's PEERSYNC_REQUIRE_APPROVAL, or the operator's ask for this change (`update
        # --require-approval`): decided by the input alone, so runs recorded before the field replay as they ran.
        if (change.require_approval or self.request.require_approval) and not self.approved:
            await self._boundary(Phase.AWAITING_APPROVAL)
            self.progress.awaiting_approval = True
            self._render()
            await workflow.wait_condition(lambda: self.approved or self._stopping())
            self.progress.awaiting_approval = False
        self._in_turn = workflow.patched(IN_TURN)
        await self._boundary(Phase.SYNCING)
        # An endpoint named by hand (CLI or `temporal workflow start`) is what the operator wants applied,
        # whatever the chain says: an override. Endpoints from the registry and the watcher are the chain's.
        override = self.request.override or (
            self.request.source == "manual" and self.request.endpoint is not None
        )
        if workflow.patched(REGISTRY_COMMIT):
            await self._commit(cluster, change, override)
        elif override:
            # Pinned only once the change is committed: a paused, unapproved or cancelled change leaves no
            # override behind for the next sync of these consumers to pick up.
            await workflow.execute_activity_method(
                temporal_calls.TemporalCalls.set_override,
                OverrideInput(operator_address=change.operator_address, endpoint=change.endpoint),
                summary=f"pin {change.endpoint}",
                **policies.TEMPORAL_CALL.options(),
            )
        if self._in_turn:
            results: list[SyncResult] = []
            for i, affected in enumerate(discovery.affected):
                await self._between_consumers(results)
                results.append(await self._sync(i, affected.consumer))
        else:
            results = await asyncio.gather(
                *(self._sync(i, a.consumer) for i, a in enumerate(discovery.affected))
            )
        failed = [r for r in results if r.error]
        self._set_phase(
            Phase.FAILED if failed else Phase.DONE, f"{len(failed)} consumer(s) failed" if failed else None
        )
        return EndpointChangeResult(
            validator=change.operator_address,
            moniker=change.moniker,
            endpoint=change.endpoint,
            phase=self.progress.phase,
            consumers=list(results),
            skipped=discovery.skipped,
        )

    async def _hold_after_cancel(self, cluster: str) -> None:
        """A cancelled move of the chain's must not come back through reconcile: the registry holds the endpoint
        in effect before it (it ignores the ask when a newer change of the validator exists)."""
        if self.request.source == "manual" or not workflow.patched(HOLD_ON_CANCEL):
            return  # an operator's own change pins nothing before its commit: nothing to hold
        reason = self.cancel_request.reason if self.cancel_request else "cancelled"
        ask = HoldAsk(validator=self.request.validator, reason=reason, change_id=workflow.info().workflow_id)
        try:
            await workflow.get_external_workflow_handle(registry_id(cluster)).signal("hold", ask)
        except (
            Exception
        ) as exc:  # no registry: nothing applies the cancelled endpoint behind the operator's back
            workflow.logger.warning("hold not placed after the cancel: %s", exc)

    async def _commit(self, cluster: str, change: ValidatedChange, override: bool) -> None:
        """Commit to the registry: still the newest change of this validator? Then pin the override (only now:
        a paused, unapproved or cancelled change leaves no pin behind) and take the snapshot to sync with."""
        me = workflow.info().workflow_id
        ask = RegistryAsk(
            request_id=f"{me}/commit",
            reply_to=me,
            commit=ChangeCommit(
                change_id=me,
                operator_address=change.operator_address,
                endpoint=change.endpoint,
                override=override,
                height=self.request.height,
            ),
        )
        try:
            answer = await ask_registry(cluster, self.answers, ask)
        except RegistryUnanswered as exc:
            raise ApplicationError(str(exc), type="StepFailed", non_retryable=True) from None
        if answer.refused is not None:
            raise _Superseded(answer.current or answer.refused)
        if override and (answer.snapshot is None or not answer.snapshot.registry):
            raise ApplicationError(
                f"cannot pin {change.endpoint}: no registry runs for cluster {cluster} (start a worker)",
                type="StepFailed",
                non_retryable=True,
            )
        self.snapshot = answer.snapshot

    async def _probe(self, change: ValidatedChange, affected: list[AffectedConsumer]) -> None:
        ports = sorted({a.p2p_port for a in affected})
        if not ports:
            return
        # The node at each port must prove the id peersync will write for it (CometBFT's p2p handshake).
        ids: dict[int, set[str]] = {}
        for a in affected:
            if a.node_id is not None:
                ids.setdefault(a.p2p_port, set()).add(a.node_id)
        expected = {port: next(iter(found)) for port, found in ids.items() if len(found) == 1}
        probe = ProbeInput(endpoint=change.endpoint, ports=ports, expected_ids=expected or None)
        summary = (
            f"handshake {change.endpoint} ports {ports}"
            if expected
            else f"TCP {change.endpoint} ports {ports}"
        )
        # Fast path: one local attempt, no extra workflow task when the node already answers.
        try:
            await workflow.execute_local_activity_method(
                PeersyncActivities.probe_endpoint,
                probe,
                summary=summary,
                **policies.PROBE.first_local_attempt(),
            )
            return
        except (ActivityError, ApplicationError) as exc:  # a failed local attempt: its ApplicationError
            first_error = error_cause(exc)
        if workflow.patched(PROBE_ROUNDS):
            await self._probe_rounds(change, probe, summary, first_error)
            return
        # The retries run as a regular activity: retrying locally would hold the workflow task open for the
        # whole budget (queries and `peersync status` answer only between its heartbeats, seconds apart)
        # and the local schedule-to-close budget is not enforced across in-worker retries.
        probing = workflow.start_activity_method(
            PeersyncActivities.probe_endpoint, probe, summary=summary, **_probe_budget(change).options()
        )
        # The probe may retry for its whole budget; a cancel must not wait for it (nothing is written yet).
        await workflow.wait_condition(lambda: probing.done() or self._stopping())
        if not probing.done():
            probing.cancel()
            self._check_cancel()
        try:
            await probing
        except ActivityError as exc:
            reason = error_cause(exc)
            self._set_phase(Phase.BLOCKED, f"{reason}; approve to force, or cancel")
            await workflow.wait_condition(lambda: self.approved or self._stopping())
            self._check_cancel()
            self.approved = False  # forcing past the probe is not also approval of the restarts
            self.forced_host = change.host

    async def _probe_rounds(
        self, change: ValidatedChange, probe: ProbeInput, summary: str, first_error: str
    ) -> None:
        """The retries as attempts the workflow schedules itself (workflows/probe_rounds.py): attempts, last
        error and deadline show in `progress` and the UI while it probes, not only once it is blocked."""
        budget = _probe_budget(change)
        status = ProbeStatus(attempts=1, last_error=first_error, deadline=workflow.now() + budget.total)
        self.progress.probe = status
        reason = await probe_rounds.probe_in_rounds(
            probe, summary, budget, status, self._stopping, self._render
        )
        self._check_cancel()
        if reason is not None:
            self._set_phase(Phase.BLOCKED, f"{reason}; approve to force, or cancel")
            await workflow.wait_condition(lambda: self.approved or self._stopping())
            self._check_cancel()
            self.approved = False  # forcing past the probe is not also approval of the restarts
            self.forced_host = change.host

    async def _sync(self, index: int, consumer: ConsumerRef) -> SyncResult:
        row = self.progress.consumers[index]
        row.step, row.state = "sync", "running"
        self._render()
        request_id = f"{workflow.info().workflow_id}/{consumer.namespace}"
        request = SyncRequest(
            requested_by=workflow.info().workflow_id,
            reason=f"{self.progress.validator} moved",
            approved=self.approved,
            request_id=request_id,
            reply_to=workflow.info().workflow_id,
            forced_hosts=[self.forced_host] if self.forced_host else [],
            snapshot=self.snapshot,
            expect_restart=True,  # the validator moved: its consumers' peers change (a hint for the slot)
        )

        async def ask() -> None:
            await workflow.execute_local_activity_method(
                temporal_calls.TemporalCalls.enqueue_consumer_sync,
                SyncCallInput(consumer=consumer, request=request),
                summary=f"ask {consumer.namespace} to sync",
                **policies.TEMPORAL_CALL.local_options(),
            )

        def waiting(asked: int, at: datetime) -> None:
            row.detail = f"waiting for {consumer.namespace}'s sync (asked {asked}x, last {at:%H:%M:%S})"
            self._render()

        try:
            if self._in_turn:
                result = await ask_until_answered(self.replies, request_id, consumer.namespace, ask, waiting)
            else:  # changes recorded before IN_TURN: one ask, an open-ended wait
                await ask()
                await workflow.wait_condition(lambda: request_id in self.replies)
                result = self.replies[request_id]
        except (ActivityError, ApplicationError, NoReply) as exc:  # a failed local activity: either type
            reason = error_cause(exc)
            row.step, row.state, row.detail = "done", "failed", reason
            self._render()
            return SyncResult(
                consumer=consumer,
                sync_number=0,
                changed=False,
                old_peers=[],
                new_peers=[],
                peers_hash="",
                restarted=False,
                error=reason,
            )
        row.step = "done"
        row.state = "restarted" if result.restarted else ("written" if result.changed else "unchanged")
        row.detail, row.live = (result.rollout if result.restarted else result.outcome()), result.live
        if result.caught_up:  # catch-up gating: the nodes are signing again, and when
            row.detail = f"{row.detail}; {result.caught_up}"
        if result.error:
            row.state, row.detail = "failed", result.error
        self._render()
        return result

    async def _between_consumers(self, done: list[SyncResult]) -> None:
        """The boundary between two consumers: wait out a pause, then honour a cancel. The consumers already
        synced stay as they are (their peers are right for the new endpoint); the others are not asked."""
        if self.progress.paused and self.cancel_request is None:
            self._render()
            await workflow.wait_condition(lambda: not self.progress.paused or self.cancel_request is not None)
        if self.cancel_request is None:
            return
        left = [c for c in self.progress.consumers if c.step == "pending"]
        for c in left:
            c.state, c.detail = "not asked", "cancelled before this consumer"
        synced = ", ".join(r.consumer.namespace for r in done) or "none"
        raise ApplicationError(
            f"cancelled by the operator after {len(done)} of {len(done) + len(left)} consumer(s) "
            f"(synced, left as they are: {synced}; not asked: {', '.join(c.namespace for c in left)}): "
            f"{self.cancel_request.reason}",
            type=policies.OPERATOR_CANCELLED,
            non_retryable=True,
        )

    async def _boundary(self, phase: Phase) -> None:
        """A step boundary: honour cancel, then wait out a pause, then enter `phase`."""
        self._check_cancel()
        if self.progress.paused:
            self._render()
            await workflow.wait_condition(lambda: not self.progress.paused or self._stopping())
            self._check_cancel()
        self._set_phase(phase)

    def _stopping(self) -> bool:
        return self.cancel_request is not None or self.superseded_by is not None

    def _check_cancel(self) -> None:
        if self.superseded_by is not None and self.cancel_request is None:
            raise _Superseded(self.superseded_by)
        if self.cancel_request is not None:
            raise ApplicationError(
                f"cancelled by the operator: {self.cancel_request.reason}",
                type=policies.OPERATOR_CANCELLED,
                non_retryable=True,
            )

    def _set_phase(self, phase: Phase, reason: str | None = None) -> None:
        self.progress.phase, self.progress.reason = phase, reason
        if phase in FINAL_PHASES:
            metrics.endpoint_change_finished(phase.value)
            workflow.logger.log(
                logging.INFO if phase in (Phase.DONE, Phase.SUPERSEDED) else logging.WARNING,
                "endpoint change of %s to %s: %s%s",
                self.progress.validator,
                self.progress.endpoint,
                phase.value,
                f" ({reason})" if reason else "",
                extra={
                    "validator": self.request.validator,
                    "endpoint": self.progress.endpoint,
                    "phase": phase.value,
                },
            )
        if phase in INDEXED_PHASES or (phase == Phase.PROBING and workflow.patched(INDEX_PROBING)):
            # One upsert (one history event) per phase an operator filters on, carrying any attribute
            # learnt since the last one.
            workflow.upsert_search_attributes([*self._attributes, PHASE.value_set(phase.value)])
            self._attributes = []
        self._render()

    def _render(self) -> None:
        p = self.progress
        # Monikers, endpoints as typed and reasons are chain or operator text: escaped (workflows/markdown.py).
        head = f"**{markdown.cell(p.validator)}** → {markdown.cell(p.endpoint)} — **{p.phase.value}**"
        if p.paused:
            head += " (paused)"
        if p.reason:
            head += f"\n\n{markdown.cell(p.reason)}"
        if p.probe is not None and p.phase in (Phase.PROBING, Phase.BLOCKED):
            head += f"\n\n{markdown.cell(markdown.probe_summary(p.probe))}"
        rows = "\n".join(
            markdown.row(c.namespace, c.chain_id, c.step, c.state, c.detail) for c in p.consumers
        )
        table = (
            "\n\n| namespace | chain | step | state | detail |\n|---|---|---|---|---|\n" + rows
            if rows
            else ""
        )
        workflow.set_current_details(head + table)
