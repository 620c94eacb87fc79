"""`peersync worker`: the Temporal worker of one cluster (task queue peersync-<cluster_id>).

It also makes sure the cluster's RegistryWorkflow runs. SIGTERM stops polling and gives in-flight
activities a grace period; whatever does not finish is retried by another worker (heartbeats resume it).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.defs import PeersyncActivities
from activities.temporal_calls import TemporalCalls, ensure_rollout_slots
from workers.registry_start import registry_start_options
from workers.schedule import apply_schedule
from workers.settings import Settings
from workers.telemetry import process_runtime
from workflows.consumer_sync import ConsumerSyncWorkflow
from workflows.endpoint_change import EndpointChangeWorkflow
from workflows.reconcile import ReconcileWorkflow
from workflows.registry import RegistryConfig, RegistryWorkflow
from workflows.rollout_slots import RolloutSlotsWorkflow

WORKFLOWS = [
    RegistryWorkflow,
    EndpointChangeWorkflow,
    ConsumerSyncWorkflow,
    RolloutSlotsWorkflow,
    ReconcileWorkflow,
]
log = logging.getLogger("peersync.worker")
MAX_CONCURRENT_ACTIVITIES = 20
GRACEFUL_SHUTDOWN = timedelta(seconds=30)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client from the settings, plus TLS/API key/gRPC metadata from Temporal's own environment
    configuration (TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE) for a
    production or cloud Temporal."""
    config = ClientConfigProfile.load().to_client_connect_config()
    config["target_host"] = settings.temporal_address
    config["namespace"] = settings.temporal_namespace
    return await Client.connect(**config, data_converter=pydantic_data_converter, runtime=runtime)


async def ensure_registry(client: Client, settings: Settings) -> None:
    """Start the registry, or hand a running one this worker's settings (it outlives any worker)."""
    await client.start_workflow(
        RegistryWorkflow.run,
        **registry_start_options(settings),
        start_signal="configure",
        start_signal_args=[RegistryConfig(refresh_seconds=settings.registry_refresh.total_seconds())],
    )


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    acts = PeersyncActivities(settings, client)
    calls = TemporalCalls(settings, client)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[*acts.all(), *calls.all()],
        activity_executor=executor,
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run_worker(settings: Settings, schedule: bool = True) -> None:
    client = await connect(settings, process_runtime(settings, serve_metrics=True))
    with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES) as executor:
        worker = build_worker(client, settings, executor)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            await ensure_registry(client, settings)
            await ensure_rollout_slots(client, settings)
            if schedule:
                await apply_schedule(client, settings)
            log.info("peersync worker: cluster %s, task queue %s", settings.cluster_id, settings.task_queue)
            await stop.wait()
