"""RegistryWorkflow: one per cluster, long-running; the desired endpoint table (validator -> endpoint).

Refreshes on a timer and whenever nudged; each refresh sends the per-bucket fingerprints it holds and
gets back only what differs, so a quiet refresh adds a few hundred bytes of history. Every effective
endpoint that moves starts one EndpointChangeWorkflow (deterministic id). All state is one model,
carried through continue-as-new.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from pydantic import BaseModel, Field, ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    # temporal_calls as a module: it imports workflow modules, so a name import could loop.
    from activities import temporal_calls
    from activities.defs import PeersyncActivities
    from core.contracts import (
        ChangeAsk,
        EndpointSnapshot,
        EndpointStatus,
        HoldAsk,
        RegistryAnswer,
        RegistryAsk,
        RegistryView,
        SupersededNotice,
    )
    from core.endpoint import EndpointError, parse_endpoint_syntax
    from core.registry_state import ChangeEvent, RegistryState
    from workflows import metrics, policies
    from workflows.activity_contracts import OverrideInput, RefreshInput, RefreshOutput, StartChangesInput
    from workflows.failures import error_cause
    from workflows.reconcile_contracts import ReconcileInput
    from workflows.search_attributes import CLUSTER


# Patch id: refresh at once on start, then once per period (before it, the loop waited a period twice).
REFRESH_FIRST = "registry-refresh-first"
# Patch id: the refresh is a regular activity in bounded rounds (it was a local activity retried without
# end), continue-as-new is honoured while the chain is down, and a new registry's first refresh starts a
# drift check.
BOUNDED_REFRESH = "registry-bounded-refresh"
# A failed round is retried at the next period or nudge; a round never outlasts a few periods, so the
# workflow gets to say why it waits, but never less than this (an attempt must fit in it).
ROUND_FLOOR = timedelta(seconds=10)
# Patch id: the registry is the one writer of intent. It names every change, tells an older change of the
# same validator that it is superseded (by the heights it holds), starts the operator's manual changes
# (`request_change`), answers each change's commit and each sync's ask with a versioned snapshot (`share`).
# Before it, the watcher also started changes and supersession parsed heights out of workflow ids.
ONE_WRITER = "registry-one-writer"
# A websocket event can be a moment ahead of the REST view it triggers: a refresh that returns a lower height
# than the one the watcher saw is asked again after this much, not after a whole period.
LAGGING_RETRY = timedelta(seconds=1)
ROUND_PERIODS = 5
# Patch id: node-id source `discovered` (issue 12): the refresh reports the ids the nodes proved at the
# published endpoints; when one changes, a drift check lets the consumers that use them follow.
DISCOVERED_IDS = "registry-discovered-node-ids"


class RegistryInput(BaseModel):
    state: RegistryState
    refresh_seconds: float = 60.0


class RegistryStats(BaseModel):
    validators: int
    height: int
    refreshes: int
    changes_started: int
    refresh_seconds: float = 0.0


class RegistryConfig(BaseModel):
    refresh_seconds: float
    one_writer: bool = Field(
        False,
        description="True from workers that run ONE_WRITER: a registry run started by the previous release "
        "continues as new, so that it too becomes the one writer of intent",
    )


class RefreshRequest(BaseModel):
    height: int | None = None
    reason: str = "nudge"


@workflow.defn(failure_exception_types=[ValidationError])
class RegistryWorkflow:
    @workflow.init
    def __init__(self, inp: RegistryInput) -> None:
        self.inp = inp
        self.state = inp.state
        self.nudged = False
        self.refresh_seconds = inp.refresh_seconds
        self.seen_height = 0  # the highest height a nudge named (the watcher's edits)
        self._one_writer = False
        self.writer_asked = False  # an upgraded worker said so (`configure`): see move_over

    @workflow.run
    async def run(self, inp: RegistryInput) -> None:
        workflow.upsert_search_attributes([CLUSTER.value_set(self.state.cluster_id)])
        self._one_writer = workflow.patched(ONE_WRITER)
        if self._one_writer and not self.state.epoch:
            self.state.epoch = (
                workflow.info().run_id
            )  # carried through continue-as-new: one epoch per registry
        if workflow.patched(BOUNDED_REFRESH):
            await self._run_bounded()
            return
        while True:
            every = timedelta(seconds=self.refresh_seconds)
            if not workflow.patched(REFRESH_FIRST):
                # Runs recorded before the fix also waited here, so each timer refresh waited twice.
                try:
                    await workflow.wait_condition(
                        lambda: self.nudged, timeout=every, timeout_summary="next refresh"
                    )
                except TimeoutError:
                    pass
            self.nudged = False  # nudges that arrive during the refresh below coalesce into one more
            await self._refresh()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    RegistryInput(state=self.state, refresh_seconds=self.refresh_seconds)
                )
            try:
                await workflow.wait_condition(
                    lambda: self.nudged, timeout=every, timeout_summary="next refresh"
                )
            except TimeoutError:
                pass

    async def _run_bounded(self) -> None:
        """Refresh now, then once per period or nudge. A chain that is down costs a few events per round,
        and continue-as-new is honoured whenever it is suggested, even while a refresh waits for the chain."""
        while True:
            self.nudged = False  # nudges that arrive during the refresh below coalesce into one more
            new_registry = self.state.refreshes == 0  # never refreshed: no run before this one saw the chain
            out = await self._fetch()
            if out is not None:
                await self._apply(out)
                if new_registry:
                    await self._first_drift_check()
            await self._continue_as_new_if_suggested()
            lagging = out is not None and out.height < self.seen_height
            try:
                await workflow.wait_condition(
                    lambda: self.nudged or self.move_over or workflow.info().is_continue_as_new_suggested(),
                    timeout=LAGGING_RETRY if lagging else timedelta(seconds=self.refresh_seconds),
                    timeout_summary="next refresh",
                )
            except TimeoutError:
                pass
            await self._continue_as_new_if_suggested()

    @property
    def move_over(self) -> bool:
        """A run the previous release started (no ONE_WRITER) continues as new once an upgraded worker asks,
        so the one-writer code runs from the next run on."""
        return self.writer_asked and not self._one_writer

    async def _continue_as_new_if_suggested(self) -> None:
        if workflow.info().is_continue_as_new_suggested() or self.move_over:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(RegistryInput(state=self.state, refresh_seconds=self.refresh_seconds))

    async def _fetch(self) -> RefreshOutput | None:
        """One quick local attempt, then one round of regular attempts (policies.REGISTRY_REFRESH); None
        when the chain did not answer.

        The regular attempts' retries happen on the server and add no events; what a long outage adds is
        the rounds and the nudges, and continue-as-new takes over whenever the history grows too long."""
        inp = RefreshInput(known=self.state.fingerprints(), discovered=self.state.discovered_fingerprints())
        try:  # a healthy chain answers at once: one local attempt costs a single marker (a quiet refresh)
            local = await workflow.execute_local_activity_method(
                PeersyncActivities.refresh_registry,
                inp,
                summary="refresh",
                **policies.REGISTRY_REFRESH.first_local_attempt(),
            )
            return local
        except (ActivityError, ApplicationError):  # a failed local attempt may surface as either
            pass  # the chain did not answer at once: bounded regular attempts, retried on the server
        every = timedelta(seconds=self.refresh_seconds)
        budget = policies.REGISTRY_REFRESH.with_total(
            min(policies.REGISTRY_REFRESH.total, max(ROUND_FLOOR, every * ROUND_PERIODS))
        )
        handle = workflow.start_activity_method(
            PeersyncActivities.refresh_registry,
            inp,
            summary="refresh",
            **budget.options(),
        )
        await workflow.wait_condition(lambda: handle.done() or workflow.info().is_continue_as_new_suggested())
        if not handle.done():
            handle.cancel()  # the next run asks again, with the same fingerprints
            await self._continue_as_new_if_suggested()
        try:
            return await handle
        except ActivityError as exc:
            reason = error_cause(exc)
            workflow.logger.warning("registry refresh failed, retried at the next period: %s", reason)
            workflow.set_current_details(
                f"chain not answering, retried every {self.refresh_seconds:g}s or on a nudge: {reason}; "
                f"table as of height {self.state.height}"
            )
            return None

    async def _start(self, events: list[ChangeEvent]) -> list[str]:
        """Start one EndpointChange per event; each becomes its validator's newest, and the older one still
        running (if any) is told it is superseded."""
        if self._one_writer:
            events = [
                e.model_copy(update={"workflow_id": e.change_id(self.state.cluster_id)}) for e in events
            ]
        started = await workflow.execute_activity_method(
            temporal_calls.TemporalCalls.start_endpoint_changes,
            StartChangesInput(changes=events),
            summary=f"{len(events)} endpoint change(s)",
            **policies.TEMPORAL_CALL.options(),
        )
        self.state.changes_started += len(started)
        if self._one_writer:
            for event in events:
                if event.workflow_id in started:
                    older = self.state.record_started(event)
                    if older is not None:
                        await self._supersede(older, by=event.change_id(self.state.cluster_id))
        return started

    async def _supersede(self, older: str, by: str) -> None:
        try:  # an older change already syncing finishes (its consumers get the newer one next)
            await workflow.get_external_workflow_handle(older).signal("superseded", SupersededNotice(by=by))
        except Exception as exc:  # it ended already: nothing to stop
            workflow.logger.info("%s not told it is superseded: %s", older, exc)

    async def _first_drift_check(self) -> None:
        """A new registry takes the chain as its baseline, so a move made while nothing watched (stale
        ConfigMaps at first install) is no change to it: compare every consumer with the chain right away."""
        await self._drift_check("after the registry's first refresh", "registry-start")

    async def _drift_check(self, why: str, key: str) -> None:
        try:
            await workflow.start_child_workflow(
                "ReconcileWorkflow",
                ReconcileInput(),
                id=f"reconcile-{self.state.cluster_id}-{key}-{workflow.info().run_id}",
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"drift check: {why}",
            )
        except Exception as exc:  # already started (a retried task), or refused: the schedule still runs
            workflow.logger.info("drift check (%s) not started: %s", why, exc)

    async def _refresh(self) -> None:
        """Before BOUNDED_REFRESH: a local activity retried without end (kept for replay)."""
        out = await workflow.execute_local_activity_method(
            PeersyncActivities.refresh_registry,
            RefreshInput(known=self.state.fingerprints()),
            summary="refresh",
            **policies.LEGACY_REGISTRY_REFRESH,
        )
        await self._apply(out)

    async def _apply(self, out: RefreshOutput) -> None:
        events = self.state.apply_refresh(out.height, out.buckets, out.edit_heights)
        events += self.state.take_pending_changes(exclude={e.operator_address for e in events})
        # Before the changes start: their commit hands on a snapshot that carries the ids just proved.
        proved = bool(out.discovered) and self.state.apply_discovered(out.discovered)
        # (a first refresh starts its own drift check)
        if proved and workflow.patched(DISCOVERED_IDS) and self.state.refreshes > 1:
            await self._drift_check("node ids proved", f"node-ids-{self.state.refreshes}")
        if events:
            await self._start(events)
        by_status = Counter(str(e.record.status) for e in self.state.entries.values())
        metrics.registry_validators({s.value: by_status[s.value] for s in EndpointStatus})
        workflow.set_current_details(
            f"{len(self.state.entries)} validators at height {self.state.height}; "
            f"{self.state.refreshes} refreshes, {self.state.changes_started} changes started"
        )

    @workflow.signal(
        description="The worker's settings (PEERSYNC_REGISTRY_REFRESH), sent at every worker start."
    )
    def configure(self, config: RegistryConfig) -> None:
        self.refresh_seconds = config.refresh_seconds
        # Driven by the signal's payload (in history), so replay decides exactly as the first run did.
        self.writer_asked = self.writer_asked or config.one_writer

    @workflow.signal(description="Refresh now (the watcher's nudge); coalesced while a refresh runs.")
    def refresh(self, req: RefreshRequest | None = None) -> None:
        self.nudged = True
        if req is not None and req.height is not None:
            self.seen_height = max(self.seen_height, req.height)

    @workflow.signal(
        description="Answer `reply_to` (signal `registry_answer`) with the snapshot of the pins, after "
        "committing the change in `commit` (refused when a newer change of its validator exists)."
    )
    async def share(self, ask: RegistryAsk) -> None:
        supersede = None
        if ask.commit is None:
            answer = RegistryAnswer(request_id=ask.request_id, snapshot=self.state.pinned())
        else:
            verdict = self.state.commit(ask.commit)
            answer, supersede = (
                verdict.answer.model_copy(update={"request_id": ask.request_id}),
                verdict.supersede,
            )
        try:
            await workflow.get_external_workflow_handle(ask.reply_to).signal("registry_answer", answer)
        except Exception as exc:  # the asker is gone: nobody to tell (it asks again if it comes back)
            workflow.logger.info("cannot answer %s: %s", ask.reply_to, exc)
        if supersede is not None and ask.commit is not None:
            await self._supersede(supersede, by=ask.commit.change_id)

    @workflow.update(
        description="Start an operator's change now (CLI `update`): the chain's endpoint, or `endpoint` (pinned "
        "as an override at the change's commit when `override`). Returns the change's workflow id."
    )
    async def request_change(self, ask: ChangeAsk) -> str:
        op = self.state.resolve(ask.validator).record.operator_address
        event = self.state.manual_change(op, ask.endpoint, ask.override, ask.require_approval)
        started = await self._start([event])
        if not started:
            raise ApplicationError(f"{event.workflow_id} already ran", non_retryable=True)
        return event.change_id(self.state.cluster_id)

    @request_change.validator
    def _change_allowed(self, ask: ChangeAsk) -> None:
        self._override_known(OverrideInput(operator_address=ask.validator, endpoint=ask.endpoint))

    @workflow.update(
        description="Pin (endpoint) or clear (null) an operator override; the validator by operator "
        "address or unique moniker. Clearing starts a change back to the chain's endpoint."
    )
    async def set_override(self, inp: OverrideInput) -> RegistryView:
        op = self.state.resolve(inp.operator_address).record.operator_address
        pending = self.state.manual_in_flight(op) if inp.endpoint is None else None
        if self.state.set_override(op, inp.endpoint) is not None:
            self.nudged = True  # the next refresh starts the change to the endpoint now in effect
        if pending is not None:  # an operator's change not yet done must not pin what was just cleared
            await self._supersede(pending, by="the operator's clear of the override")
        return self._row(op)

    def _row(self, operator_address: str) -> RegistryView:
        return next(v for v in self.state.view() if v.operator_address == operator_address)

    @workflow.signal(
        description="A chain-driven change was cancelled by an operator: hold the endpoint in effect before it "
        "(registry status `held`) until the chain moves again or `peersync hold release`."
    )
    def hold(self, ask: HoldAsk) -> None:
        try:
            op = self.state.resolve(ask.validator).record.operator_address
        except KeyError as exc:
            workflow.logger.warning("hold not placed: %s", exc)
            return
        if ask.change_id is not None:
            self.state.hold_for_change(op, ask.change_id, ask.reason, at=self._now())

    @workflow.update(
        description="`peersync hold`: keep the endpoint in effect now until the chain moves again."
    )
    def place_hold(self, ask: HoldAsk) -> RegistryView:
        op = self.state.resolve(ask.validator).record.operator_address
        self.state.place_hold(op, ask.reason, at=self._now())
        return self._row(op)

    @place_hold.validator
    def _hold_possible(self, ask: HoldAsk) -> None:
        self._override_known(OverrideInput(operator_address=ask.validator, endpoint=None))
        entry = self.state.resolve(ask.validator)
        if entry.effective is None:
            raise ValueError(f"registry: {entry.record.moniker} has no endpoint in effect to hold")

    @workflow.update(
        description="`peersync hold release`: end a hold; a change to the endpoint then in effect starts."
    )
    def release_hold(self, ask: HoldAsk) -> RegistryView:
        op = self.state.resolve(ask.validator).record.operator_address
        if self.state.release_hold(op) is not None:
            self.nudged = True  # the next refresh starts the change to the endpoint now in effect
        return self._row(op)

    @release_hold.validator
    def _hold_held(self, ask: HoldAsk) -> None:
        self._override_known(OverrideInput(operator_address=ask.validator, endpoint=None))
        entry = self.state.resolve(ask.validator)
        if entry.hold is None:
            raise ValueError(f"registry: {entry.record.moniker} is not held")

    def _now(self) -> str:
        return workflow.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    @set_override.validator
    def _override_known(self, inp: OverrideInput) -> None:
        try:
            self.state.resolve(inp.operator_address)
        except KeyError as exc:
            raise ValueError(f"registry: {exc.args[0]}") from None
        if inp.endpoint is not None:
            try:  # the grammar only: the address policy is the worker's setting, applied where it is used
                parse_endpoint_syntax(inp.endpoint)
            except EndpointError as exc:
                raise ValueError(f"registry: endpoint {exc}") from None

    @workflow.query(description="The table: one row per validator.")
    def table(self) -> list[RegistryView]:
        return self.state.view()

    @workflow.query(description="Counters: validators, last height, refreshes, changes started.")
    def stats(self) -> RegistryStats:
        return RegistryStats(
            validators=len(self.state.entries),
            height=self.state.height,
            refreshes=self.state.refreshes,
            changes_started=self.state.changes_started,
            refresh_seconds=self.refresh_seconds,
        )

    @workflow.query(description="Endpoints in effect that the chain does not publish right now.")
    def pinned(self) -> EndpointSnapshot:
        return self.state.pinned()
