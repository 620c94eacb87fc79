"""The cluster's reconcile schedule: a Temporal Schedule that starts ReconcileWorkflow every
PEERSYNC_RECONCILE_EVERY, overlap SKIP (a slow reconcile is never stacked)."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from workers.settings import Settings
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput


def schedule_id(cluster_id: str) -> str:
    return f"reconcile-{cluster_id}"


def reconcile_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            ReconcileInput(),
            id=f"reconcile-{settings.cluster_id}",
            task_queue=settings.task_queue,
            static_summary=f"periodic reconcile of cluster {settings.cluster_id}",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=settings.reconcile_every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=settings.reconcile_every),
        state=ScheduleState(note="managed by `peersync schedule apply`"),
    )


async def apply_schedule(client: Client, settings: Settings) -> ScheduleHandle:
    """Create the schedule, or bring an existing one to these settings (idempotent)."""
    wanted = reconcile_schedule(settings)
    try:
        return await client.create_schedule(schedule_id(settings.cluster_id), wanted)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id(settings.cluster_id))

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            wanted.state = current.description.schedule.state  # keep a pause an operator set
            return ScheduleUpdate(schedule=wanted)

        await handle.update(update)
        return handle
