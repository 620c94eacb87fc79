"""Partial knowledge never acts (issue 9, item 3): while the registry exists but does not answer, a sync
writes nothing and restarts nothing; it retries, and succeeds once the registry answers again.

How the registry is made unreachable, honestly: it is replaced (same id) by a run on a task queue that no
worker polls. The run exists, so a signal to it is not "not found"; no worker ever processes its tasks, so
the sync's ask for its snapshot (signal `share`) is never answered. That is what a registry wedged on a failing workflow task, or
on a worker version that is not deployed, looks like to the activity.
"""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from core.contracts import SyncResult
from core.ids import consumer_sync_id, registry_id
from core.registry_state import RegistryState
from devnet.testbed import World, eventually
from workflows.registry import RegistryInput, RegistryWorkflow

C1 = "alice-consumer-1"
STALLED_QUEUE = "peersync-alice-nobody-polls"


async def _replace_registry(world: World, task_queue: str) -> None:
    """Terminate the cluster's registry and start it again (fresh state) on `task_queue`."""
    handle = world.handle(registry_id("alice"))
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("test: replace the registry")
    await world.client.start_workflow(
        RegistryWorkflow.run,
        RegistryInput(state=RegistryState(cluster_id="alice"), refresh_seconds=1),
        id=registry_id("alice"),
        task_queue=task_queue,
    )


async def test_a_registry_that_does_not_answer_stops_the_sync_until_it_does(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    world.drop_first_peer(C1)  # drift a sync would repair (write + restart) if it went ahead
    log = world.record_kube()
    generation = world.generation(C1)
    await _replace_registry(world, STALLED_QUEUE)

    # An operator asks for a sync now; it cannot learn the registry's pins, so it must not go ahead.
    sync_cli = asyncio.ensure_future(world.peersync("sync", "--consumer", "consumer-1", "--json"))
    sync = world.handle(consumer_sync_id("alice", C1))

    async def retrying() -> bool:
        if sync_cli.done():  # not an AssertionError: `eventually` must not wait on
            raise RuntimeError(f"the sync went ahead without the registry: {sync_cli.result()}")
        try:
            history = await sync.fetch_history()
        except RPCError:  # not started yet
            return False
        asks = [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
            and e.signal_external_workflow_execution_initiated_event_attributes.signal_name == "share"
        ]
        return len(asks) >= 2  # asked for the registry's snapshot, no answer, asked again

    await eventually(retrying, 90, "the sync to ask the silent registry for its snapshot again")
    assert not sync_cli.done()
    assert log.configmap_writes(C1) == 0 and world.generation(C1) == generation  # nothing acted

    # The registry answers again: the same sync goes on and repairs the consumer.
    await _replace_registry(world, "peersync-alice")
    code, out, err = await asyncio.wait_for(sync_cli, 90)
    assert code == 0, (out, err)
    result = SyncResult.model_validate_json(out)
    assert result.error is None and result.changed, result
    assert log.configmap_data_writes(C1) == 1
