"""ReconcileWorkflow: repair drift that no chain event announces (a hand-edited ConfigMap, a run that
failed half-way, a missed event). Refresh the registry, compare every managed consumer with the chain,
and hand each drifted one to its ConsumerSyncWorkflow. Run by the `reconcile` schedule and by
`peersync reconcile`."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # temporal_calls as a module: it imports workflow modules, so a name import could loop.
    from activities import temporal_calls
    from activities.defs import PeersyncActivities
    from core.contracts import (
        NEEDS_APPROVAL,
        ConsumerRef,
        EndpointSnapshot,
        RegistryAnswer,
        RegistryAsk,
        SyncReply,
        SyncRequest,
        SyncResult,
    )
    from core.ids import cluster_of_task_queue, registry_id
    from workflows import markdown, policies
    from workflows.activity_contracts import CheckDriftInput, SyncCallInput
    from workflows.failures import error_cause
    from workflows.reconcile_contracts import DriftRow, ReconcileInput, ReconcileReport
    from workflows.registry_ask import RegistryUnanswered, ask_registry
    from workflows.search_attributes import CLUSTER
    from workflows.sync_wait import NoReply, ask_until_answered

# Repairs wait for their answer with re-asks and an end (workflows/sync_wait.py); older runs replay so.
REASK = "reconcile-reask"
# The registry's snapshot is asked once, compared with and carried by every repair; older runs let the
# drift check and each sync query the registry themselves.
RECONCILE_SNAPSHOT = "reconcile-snapshot"


@workflow.defn(failure_exception_types=[ValidationError])
class ReconcileWorkflow:
    @workflow.init
    def __init__(self, inp: ReconcileInput) -> None:
        self.replies: dict[str, SyncResult] = {}
        self._waiting: dict[str, str] = {}  # namespace -> why the row still waits (shown in the UI)
        self._report: ReconcileReport | None = None
        self.answers: dict[str, RegistryAnswer] = {}
        self.snapshot: EndpointSnapshot | None = None

    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileReport:
        cluster = cluster_of_task_queue(workflow.info().task_queue)
        workflow.upsert_search_attributes([CLUSTER.value_set(cluster)])
        try:
            await workflow.get_external_workflow_handle(registry_id(cluster)).signal("refresh")
        except Exception as exc:  # no registry yet: the chain is read directly below anyway
            workflow.logger.info("registry not nudged: %s", exc)
        if workflow.patched(RECONCILE_SNAPSHOT):
            me = workflow.info().workflow_id
            try:
                answer = await ask_registry(cluster, self.answers, RegistryAsk(request_id=me, reply_to=me))
            except RegistryUnanswered as exc:  # never compare (or repair) with pins it does not know
                raise ApplicationError(
                    str(exc), type=policies.REGISTRY_UNAVAILABLE, non_retryable=True
                ) from None
            self.snapshot = answer.snapshot
        found = await workflow.execute_activity_method(
            PeersyncActivities.check_drift, CheckDriftInput(dry_run=inp.dry_run, pins=self.snapshot),
            summary="compare every consumer with the chain", **policies.CHAIN_READ.options(),
        )  # fmt: skip
        report = ReconcileReport(dry_run=inp.dry_run)
        for row in found.rows:
            {"clean": report.clean, "drifted": report.drifted, "skipped": report.skipped}[row.state].append(
                row
            )
        self._report = report
        self._show(report)
        if not inp.dry_run and report.drifted:
            reask = workflow.patched(REASK)
            outcomes = await asyncio.gather(*(self._repair(row, reask) for row in report.drifted))
            lists = {"repaired": report.repaired, "awaiting-approval": report.awaiting_approval}
            for row in outcomes:
                lists.get(row.state, report.failed).append(row)
        self._waiting.clear()
        self._show(report)
        return report

    async def _repair(self, row: DriftRow, reask: bool) -> DriftRow:
        consumer: ConsumerRef = row.consumer  # type: ignore[assignment]  # drifted rows always name one
        request_id = f"{workflow.info().workflow_id}/{consumer.namespace}"
        request = SyncRequest(
            requested_by=workflow.info().workflow_id, reason=f"reconcile: {row.reason}", request_id=request_id,
            reply_to=workflow.info().workflow_id, snapshot=self.snapshot,
        )  # fmt: skip

        async def ask() -> None:
            await workflow.execute_activity_method(
                temporal_calls.TemporalCalls.enqueue_consumer_sync,
                SyncCallInput(consumer=consumer, request=request),
                summary=f"repair {consumer.namespace}", **policies.TEMPORAL_CALL.options(),
            )  # fmt: skip

        def waiting(asked: int, at: datetime) -> None:
            self._waiting[consumer.namespace] = f"waiting for its sync (asked {asked}x, last {at:%H:%M:%S})"
            if self._report is not None:
                self._show(self._report)

        try:
            if reask:
                result = await ask_until_answered(self.replies, request_id, consumer.namespace, ask, waiting)
            else:  # runs recorded before REASK: one ask, an open-ended wait
                await ask()
                await workflow.wait_condition(lambda: request_id in self.replies)
                result = self.replies[request_id]
        except ActivityError as exc:
            reason = error_cause(exc)
            return row.model_copy(update={"state": "failed", "reason": reason})
        except NoReply as exc:
            return row.model_copy(update={"state": "failed", "reason": str(exc)})
        finally:
            self._waiting.pop(consumer.namespace, None)
        if result.error:
            return row.model_copy(update={"state": "failed", "reason": result.error})
        done = f"{row.reason} -> {result.outcome()}"
        if result.kept_unreachable:  # those peers still drift: not repaired
            return row.model_copy(update={"state": "failed", "reason": done})
        if result.rollout == NEEDS_APPROVAL and not result.restarted:
            # Written, but the pods still run the old peers until someone approves the restart.
            return row.model_copy(update={"state": "awaiting-approval", "reason": done})
        return row.model_copy(update={"state": "repaired", "reason": done})

    @workflow.signal(description="The registry answers this run's ask for its snapshot.")
    def registry_answer(self, answer: RegistryAnswer) -> None:
        self.answers[answer.request_id] = answer

    @workflow.signal(description="A ConsumerSyncWorkflow answers a repair this run asked for.")
    def sync_done(self, reply: SyncReply) -> None:
        self.replies[reply.request_id] = reply.result

    def _show(self, r: ReconcileReport) -> None:
        rows = [*r.drifted, *r.repaired, *r.awaiting_approval, *r.failed, *r.skipped]
        # Reasons quote chain text (monikers, published endpoints): escaped (workflows/markdown.py).
        table = "\n".join(
            markdown.row(x.namespace, x.state, self._waiting.get(x.namespace) or x.reason) for x in rows
        )
        awaiting = f"{len(r.awaiting_approval)} awaiting approval, " if r.awaiting_approval else ""
        head = (
            f"**{len(r.clean)} clean, {len(r.drifted)} drifted, {len(r.repaired)} repaired, {awaiting}"
            f"{len(r.failed)} failed, {len(r.skipped)} skipped**" + (" (dry run)" if r.dry_run else "")
        )
        workflow.set_current_details(
            head + ("\n\n| namespace | state | why |\n|---|---|---|\n" + table if rows else "")
        )
