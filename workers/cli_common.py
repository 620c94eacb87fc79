"""What every `peersync` command shares: settings loading and the one-line refusal."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from pydantic import ValidationError
from rich.console import Console
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType, WorkerStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ListWorkersRequest
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError

from activities.chain_rest import ChainError
from activities.kube_ops import explain
from core.ids import cluster_of_task_queue
from workers.settings import Settings, SettingsError, load_settings
from workers.worker import StartError
from workers.worker import connect as connect_client
from workflows.failures import error_cause

T = TypeVar("T")
console = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass
class AppState:
    config_file: Path | None = None

    def settings(self) -> Settings:
        try:
            return load_settings(self.config_file)
        except SettingsError as exc:
            fail(str(exc))


def state(ctx: typer.Context) -> AppState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, AppState) else AppState()


_error_exit = [1]  # the exit status of a refusal (see errors_exit_with)


def errors_exit_with(code: int) -> None:
    """Make every later refusal of this command exit `code`: for a command whose exit 1 means a finding
    (`reconcile --dry-run`: drift, as `kubectl diff`), so that an error cannot read as one."""
    _error_exit[0] = code


def fail(reason: str, code: int | None = None) -> NoReturn:
    """Refuse: one line on stderr, non-zero exit (1 unless `code` or errors_exit_with says otherwise).

    Leaves with os._exit: a process that has used the Temporal client can crash in the SDK's runtime
    teardown at interpreter exit (reference/temporal.md, gotcha 9), which would turn a clean refusal
    into a core dump."""
    print(f"peersync: {' '.join(reason.split())}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_error_exit[0] if code is None else code)


def call(coro: Awaitable[T]) -> T:
    """Run one Temporal call; turn its refusals into one-line reasons."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except WorkflowUpdateFailedError as exc:
        # The validator's reason only: not "ValueError: ..." (the exception type travels as the failure's type).
        fail(f"refused: {error_cause(exc)}")
    except WorkflowFailureError as exc:
        fail(f"the workflow failed: {error_cause(exc)}")
    except WorkflowAlreadyStartedError as exc:
        fail(f"already running: {exc.workflow_id}")
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
        fail(f"the workflow did not answer the query: {exc}")
    except RPCError as exc:
        fail(f"Temporal refused: {exc.message}")
    except ValidationError as exc:
        fail(f"invalid input: {exc.errors()[0]['msg']}")
    finally:
        # One-shot commands can crash in the SDK's runtime teardown at interpreter exit
        # (reference/temporal.md gotcha 9); flush and leave without running it.
        console.file.flush()


async def connect(settings: Settings) -> Client:
    """The Temporal client of a one-shot command. Only here is a failure "cannot reach Temporal": other
    RuntimeErrors (a chain read, a cluster call) are not about Temporal."""
    try:
        return await connect_client(settings)
    except RuntimeError as exc:  # Client.connect raises RuntimeError when it cannot connect
        reason = str(exc).removeprefix("Failed client connect: ")
        fail(f"cannot reach Temporal at {settings.temporal_address}: {reason}")


async def has_worker(client: Client, task_queue: str) -> bool:
    """Whether some worker polls this workflow task queue.

    The server lists a worker's pollers for minutes after it stopped, so a listed poller is not enough: a
    worker that shut down says so in its heartbeat (servers with ListWorkers), and its pollers no longer
    count once it has. A poller without such a heartbeat counts: a worker that just started (its first
    heartbeat comes later), one on a server without heartbeats, or one killed moments ago (`ask` bounds the
    wait for that one)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        retry=True,
    )
    if not response.pollers:
        return False
    stopped = await _stopped(client, task_queue)
    return any(
        poller.identity not in stopped or poller.last_access_time.ToDatetime() > stopped[poller.identity]
        for poller in response.pollers
    )


async def _stopped(client: Client, task_queue: str) -> dict[str, datetime]:
    """Worker identity -> when it said it was shutting down, for each worker of the task queue that did
    and has not run again since under the same identity (a restarted pod keeps its `pid@host`)."""
    try:
        response = await client.workflow_service.list_workers(
            ListWorkersRequest(namespace=client.namespace, query=f"TaskQueue = '{task_queue}'", page_size=100)
        )
    except RPCError:  # a server without ListWorkers (or that may not answer it): the pollers decide
        return {}
    beats = sorted(
        (info.worker_heartbeat for info in response.workers_info), key=lambda b: b.heartbeat_time.ToDatetime()
    )
    stopped: dict[str, datetime] = {}
    for beat in beats:  # oldest first: the newest heartbeat of an identity decides
        if beat.status == WorkerStatus.WORKER_STATUS_RUNNING:
            stopped.pop(beat.worker_identity, None)
        else:
            stopped[beat.worker_identity] = beat.heartbeat_time.ToDatetime()
    return stopped


QUERY_TIMEOUT = timedelta(seconds=10)  # a worker answers a query in milliseconds, or seconds when busy


class NoAnswer(Exception):
    """No worker answers queries on the task queue; str() is the one-line reason with what to do."""

    def __init__(self, what: str, task_queue: str) -> None:
        super().__init__(f"{what}: start 'peersync worker' for cluster {cluster_of_task_queue(task_queue)}")
        self.what = what
        self.cluster = cluster_of_task_queue(task_queue)


async def ask(
    client: Client, handle: WorkflowHandle[Any, Any], task_queue: str, query: Any, **kw: Any
) -> Any:
    """A query's answer, checking first that a worker can give it (a query needs one): NoAnswer when none
    polls the task queue, or none answered within QUERY_TIMEOUT (a worker that died without saying so).
    Unchecked, a query waits for a worker and ends, half a minute later, in a Temporal error that blames
    nobody."""
    if not await has_worker(client, task_queue):
        raise NoAnswer(f"no worker polls task queue {task_queue}", task_queue)
    within = f"no worker answered on task queue {task_queue} within {QUERY_TIMEOUT.seconds}s"
    try:
        return await handle.query(query, rpc_timeout=QUERY_TIMEOUT, **kw)
    except RPCTimeoutOrCancelledError:
        raise NoAnswer(within, task_queue) from None
    except RPCError as exc:
        if exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):  # "Timeout expired"
            raise NoAnswer(within, task_queue) from None
        if exc.status == RPCStatusCode.FAILED_PRECONDITION and "no poller" in exc.message:
            # "no poller seen for task queue recently, worker may be down"
            raise NoAnswer(f"no worker answered on task queue {task_queue}", task_queue) from None
        raise


def no_worker(task_queue: str) -> str:
    return str(NoAnswer(f"no worker polls task queue {task_queue}", task_queue))


async def require_worker(client: Client, settings: Settings) -> None:
    """Refuse before starting anything the command would wait for: with no worker it would wait forever."""
    if not await has_worker(client, settings.task_queue):
        fail(no_worker(settings.task_queue))


def chain_failure(settings: Settings, exc: ChainError | ValidationError) -> NoReturn:
    reason = str(exc) if isinstance(exc, ChainError) else f"unexpected answer: {exc.errors()[0]['msg']}"
    fail(f"cannot read the provider chain at {settings.chain_rest_url}: {reason}")


KUBE_UNREACHABLE = (ConfigException, Urllib3Error, OSError)


def kube_failure(exc: Exception, settings: Settings) -> NoReturn:
    """A cluster that answered with a refusal, or no usable cluster at all (kubeconfig, connection)."""
    if isinstance(exc, ApiException):
        fail(f"Kubernetes refused: {explain(exc)}")
    if isinstance(exc, ConfigException):  # its message does not say which file
        fail(f"cannot reach Kubernetes: {exc} (KUBECONFIG={settings.kubeconfig or 'unset'})")
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, MaxRetryError) and exc.reason is not None and exc.pool is not None:
        # The reason opens with the connection object ("HTTPSConnection(host=..., port=...): Failed to
        # establish a new connection: ..."): name the server once, then what went wrong.
        cause = str(exc.reason)
        reason = f"{exc.pool.host}:{exc.pool.port}: {cause.partition('): ')[2] or cause}"
    fail(f"cannot reach Kubernetes: {reason}")


def serve(name: str, main: Coroutine[Any, Any, None]) -> None:
    """Run a long-running command (`worker`, `watch`) until a signal stops it.

    Anything else that ends it (it cannot start: Temporal unreachable, no such namespace, a failed start
    step; or a fatal error later) is one line on stderr and exit 1: never a traceback, and never a process
    that lingers after it (with /metrics still up it would look healthy). An unexpected error's traceback
    goes to the log first (it is a bug to report), then the one line.
    """
    try:
        asyncio.run(main)
        # Past this point the Temporal core's threads still run (and forward their logs into Python):
        # letting the interpreter finalize under them aborted a cleanly stopped worker now and then
        # ("PyGILState_Release ... finalizing", exit -6). Flush and leave without finalizing.
        logging.shutdown()
        leave(0)
    except StartError as exc:
        fail(str(exc))
    except Exception as exc:
        logging.getLogger(f"peersync.{name}").error("%s stopped", name, exc_info=True)
        reason = (
            f"Temporal refused: {exc.message}"
            if isinstance(exc, RPCError)
            else f"{type(exc).__name__}: {exc}"
        )
        fail(f"{name} stopped: {reason}")


def leave(code: int = 0) -> NoReturn:
    """Finish a command (see `fail` for why not through interpreter exit)."""
    sys.stdout.flush()
    sys.stderr.flush()
    console.file.flush()
    os._exit(code)


# ---- endpoint change ids: full, or a unique prefix ------------------------------------------------------

CHANGE_LIST = "WorkflowType = 'EndpointChangeWorkflow'"
_OPERATOR_HEAD = re.compile(r"^[a-z0-9]+valoper1[02-9ac-hj-np-z]+-")  # a bech32 operator address and its dash
MAX_LISTED_CHANGES = 5000  # a prefix is looked up among this many changes, newest first


def short_change_id(workflow_id: str, cluster_id: str) -> str:
    """The id as the change list shows it: without `endpoint-change-<cluster>-` and the operator address (the
    list names the validator). `...-cosmosvaloper1...-57` reads `57`; a manual change `manual-120-3`.
    Accepted wherever an id is, as a prefix of it."""
    local = workflow_id.removeprefix(f"endpoint-change-{cluster_id}-")
    if local == workflow_id:
        return workflow_id  # another cluster's (or a hand-named) change: only its full id reads right
    return _OPERATOR_HEAD.sub("", local)


def _forms(workflow_id: str, cluster_id: str) -> tuple[str, ...]:
    local = workflow_id.removeprefix(f"endpoint-change-{cluster_id}-")
    return (workflow_id, local, short_change_id(workflow_id, cluster_id))


async def resolve_change_id(client: Client, cluster_id: str, given: str) -> str:
    """The full id of the endpoint change `given` names: its id, or a unique prefix of its id, of the id
    without `endpoint-change-<cluster>-`, or of the short id the list shows. No match, or several, is a
    refusal naming the candidates."""
    try:
        await client.get_workflow_handle(given).describe()
        return given  # an exact id always wins, whatever else it prefixes
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    if not given:
        fail("an empty id names no endpoint change")
    found: list[str] = []
    async for wf in client.list_workflows(CHANGE_LIST, limit=MAX_LISTED_CHANGES):
        if wf.id not in found and any(form.startswith(given) for form in _forms(wf.id, cluster_id)):
            found.append(wf.id)
    if not found:
        fail(
            f"endpoint change {given!r} not found: no id, and no id prefix, matches it (see `peersync status`)"
        )
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        fail(
            f"id prefix {given!r} is ambiguous: it matches {len(found)} changes ({shown}); give more of the id"
        )
    return found[0]


def change_id(settings: Settings, given: str) -> str:
    """resolve_change_id for a command, before it acts (a one-line refusal when nothing, or more than one
    change, matches)."""

    async def go() -> str:
        return await resolve_change_id(await connect(settings), settings.cluster_id, given)

    return call(go())
