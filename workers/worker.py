"""`peersync worker`: the Temporal worker of one cluster (task queue peersync-<cluster_id>).

It also makes sure the cluster's RegistryWorkflow runs. SIGTERM stops polling and gives in-flight
activities a grace period; whatever does not finish is retried by another worker (heartbeats resume it).
Before it polls, it checks that Temporal answers and the namespace exists; a worker that cannot work
raises StartError (one line for the operator) rather than running idle with /metrics up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode
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
NAMESPACE_CHECK_TIMEOUT = timedelta(seconds=10)
T = TypeVar("T")


class StartError(Exception):
    """A long-running process (`peersync worker`, `peersync watch`) cannot start; the message is the one line
    the operator sees."""


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client from the settings, plus TLS/API key/gRPC metadata from Temporal's own environment
    configuration (TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE) for a
    production or cloud Temporal."""
    config = ClientConfigProfile.load().to_client_connect_config()
    config["target_host"] = settings.temporal_address
    config["namespace"] = settings.temporal_namespace
    return await Client.connect(**config, data_converter=pydantic_data_converter, runtime=runtime)


async def connect_checked(settings: Settings, runtime: Runtime | None = None) -> Client:
    """connect(), then make sure the namespace exists; StartError with the reason otherwise.

    Without the check a worker in a missing namespace ran on without polling (its /metrics up, so a pod
    looked healthy) and a watcher retried its hand-overs forever."""
    where, namespace = settings.temporal_address, settings.temporal_namespace
    try:
        client = await connect(settings, runtime)
    except RuntimeError as exc:  # Client.connect raises RuntimeError when it cannot connect
        reason = str(exc).removeprefix("Failed client connect: ")
        raise StartError(f"cannot reach Temporal at {where}: {reason}") from exc
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), retry=True, timeout=NAMESPACE_CHECK_TIMEOUT
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise StartError(
                f'Temporal namespace "{namespace}" does not exist at {where} '
                f"(create it: temporal operator namespace create --namespace {namespace})"
            ) from exc
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise StartError(f"cannot reach Temporal at {where}: {exc.message}") from exc
        raise StartError(f'Temporal at {where} refused namespace "{namespace}": {exc.message}') from exc
    return client


async def starting(process: str, what: str, step: Awaitable[T]) -> T:
    """One step of a process's start; its failure is a StartError naming the step."""
    try:
        return await step
    except RPCError as exc:
        raise StartError(f"{process} not started: {what} failed: Temporal refused: {exc.message}") from exc
    except Exception as exc:
        raise StartError(f"{process} not started: {what} failed: {type(exc).__name__}: {exc}") from exc


async def ensure_registry(client: Client, settings: Settings) -> None:
    """Start the registry, or hand a running one this worker's settings (it outlives any worker)."""
    await client.start_workflow(
        RegistryWorkflow.run,
        **registry_start_options(settings),
        start_signal="configure",
        start_signal_args=[
            RegistryConfig(refresh_seconds=settings.registry_refresh.total_seconds(), one_writer=True)
        ],
    )


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    config = settings.activity_config()  # the activities see only what they read
    acts = PeersyncActivities(config, client)
    calls = TemporalCalls(config, client)
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
    client = await connect_checked(settings, process_runtime(settings, serve_metrics=True))
    with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES) as executor:
        worker = build_worker(client, settings, executor)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            await starting("worker", "starting the registry workflow", ensure_registry(client, settings))
            await starting(
                "worker",
                "starting the rollout slots workflow",
                ensure_rollout_slots(client, settings.activity_config()),
            )
            if schedule:
                await starting("worker", "applying the reconcile schedule", apply_schedule(client, settings))
            log.info("peersync worker: cluster %s, task queue %s", settings.cluster_id, settings.task_queue)
            await stop.wait()
