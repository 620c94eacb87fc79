"""What the human-control and CLI e2e tests need on top of the World: nodes that come up when a test says
so, the `peersync` / `temporal` command lines as an operator types them, and views of a workflow's history
(is it holding at a step boundary? what did it schedule?). Everything here talks to the real processes."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import nacl.signing
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from core.contracts import Phase, Progress
from core.upstream import upstream_node_seed, upstream_ports
from devnet.chain.nodes import answer_handshake
from devnet.testbed import World, eventually

NAMESPACES = ("alice-consumer-1", "alice-consumer-2", "alice-consumer-3")
TEMPORAL_CLI = str(Path(sys.executable).parent / "temporal")


# ---- consumer nodes at a new address ----------------------------------------------------------------


class Node:
    """`moniker`'s consumer nodes at `host`, listening on the P2P port of each consumer chain and proving
    their node id (CometBFT's p2p handshake, with the upstream scheme's key): a validator's node that came
    up at its new address before anything on the chain says so (the test decides when it answers)."""

    def __init__(
        self,
        host: str,
        chain_ids: Iterable[str] = ("consumer-1", "consumer-2", "consumer-3"),
        moniker: str = "bob",
    ):
        self.host = host
        self.chain_by_port = {upstream_ports(c).p2p: c for c in chain_ids}
        self.ports = sorted(self.chain_by_port)
        self.moniker = moniker
        self.servers: list[asyncio.Server] = []
        self.dialled: set[int] = set()  # ports someone connected to since up()

    async def __aenter__(self) -> Node:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()

    async def up(self) -> Node:
        self.dialled.clear()
        for port in self.ports:
            self.servers.append(await asyncio.start_server(self._answer(port), self.host, port))
        return self

    def _answer(self, port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        key = nacl.signing.SigningKey(upstream_node_seed(self.moniker, self.chain_by_port[port]))

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.dialled.add(port)
            await answer_handshake(key, reader, writer)

        return answer

    async def probed(self, *chain_ids: str) -> bool:
        """Every P2P port of `chain_ids` has been dialled since the node came up."""
        return {upstream_ports(c).p2p for c in chain_ids} <= self.dialled

    async def down(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()
        self.servers.clear()


# ---- the cluster ------------------------------------------------------------------------------------


def snapshot(world: World) -> dict[str, tuple[str, int]]:
    """Each managed namespace's peer text and workload generation: equal snapshots = nothing written."""
    return {ns: (world.configmap_text(ns), world.generation(ns)) for ns in NAMESPACES}


# ---- command lines ----------------------------------------------------------------------------------


async def peersync_ok(world: World, *args: str, **env: str) -> str:
    """`peersync ...` that must succeed; returns its stdout."""
    code, out, err = await world.peersync(*args, **env)
    assert code == 0, (args, code, out, err)
    return out


async def update(world: World, *args: str, **env: str) -> str:
    """`peersync update ...`; returns the id of the workflow it started. An override (`--endpoint`) is
    confirmed with `--yes`, as a script must (no terminal: tests/e2e/test_confirm.py)."""
    if "--endpoint" in args and "--yes" not in args:
        args = (*args, "--yes")
    out = await peersync_ok(world, "update", *args, **env)
    match = re.search(r"started (\S+)", out)
    assert match, out
    return match.group(1)


async def temporal(world: World, *args: str) -> tuple[int, str, str]:
    """The `temporal` CLI against the world's dev server."""
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL_CLI, *args, "--address", world.manifest.temporal_address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def one_line_refusal(code: int, err: str, *needles: str) -> str:
    """DESIGN: a refused request exits non-zero with a one-line reason on stderr."""
    lines = err.strip().splitlines()
    assert code != 0, (code, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


async def current_details(world: World, workflow_id: str) -> str:
    """What the Temporal UI shows as the workflow's current details (`temporal workflow metadata`)."""
    code, out, err = await temporal(world, "workflow", "metadata", "-w", workflow_id, "-o", "json")
    assert code == 0, err
    return str(json.loads(out)["queryResult"][0].get("currentDetails", ""))


# ---- a workflow's state -----------------------------------------------------------------------------


async def phase_is(world: World, workflow_id: str, *phases: Phase) -> Progress | None:
    try:
        progress = await world.progress(workflow_id)
    except RPCError:  # not started yet
        return None
    return progress if progress.phase in phases else None


async def wait_phase(world: World, workflow_id: str, *phases: Phase, timeout: float = 30) -> Progress:
    return await eventually(
        lambda: phase_is(world, workflow_id, *phases), timeout, f"{workflow_id} to reach {phases}"
    )


async def status(world: World, workflow_id: str) -> WorkflowExecutionStatus | None:
    return (await world.handle(workflow_id).describe()).status


async def activities(world: World, workflow_id: str) -> list[tuple[str, str]]:
    """(activity type, outcome) of every activity the workflow scheduled, in order; outcome is
    `scheduled`, `started`, `completed`, `failed`, `timed-out`, `cancel-requested` or `cancelled`."""
    outcomes = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: "started",
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "failed",
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "timed-out",
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED: "cancel-requested",
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "cancelled",
    }
    scheduled: dict[int, list[str]] = {}
    history = await world.handle(workflow_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = [
                event.activity_task_scheduled_event_attributes.activity_type.name,
                "scheduled",
            ]
        elif event.event_type in outcomes:
            attrs = _activity_attrs(event)
            scheduled[attrs.scheduled_event_id][1] = outcomes[event.event_type]
    return [(name, outcome) for name, outcome in scheduled.values()]


def _activity_attrs(event: Any) -> Any:
    for field in (
        "activity_task_started_event_attributes",
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
        "activity_task_cancel_requested_event_attributes",
        "activity_task_canceled_event_attributes",
    ):
        if event.HasField(field):
            return getattr(event, field)
    raise AssertionError(f"not an activity event: {event.event_type}")


async def workflow_task_failures(world: World, workflow_id: str) -> list[str]:
    history = await world.handle(workflow_id).fetch_history()
    return [
        e.workflow_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def idle(world: World, workflow_id: str) -> bool:
    """Running, with no workflow task and no activity in flight: it waits on a condition (a pause, an
    approval, a reply), not on the outside world."""
    raw = (await world.handle(workflow_id).describe()).raw_description
    running = raw.workflow_execution_info.status == WorkflowExecutionStatus.RUNNING.value
    return running and not raw.pending_activities and not raw.HasField("pending_workflow_task")


async def awaiting_approval(world: World, *update_args: str) -> str:
    """`peersync update *update_args`, then wait until the change sits idle, waiting for its approval."""
    wf_id = await update(world, *update_args)
    await wait_phase(world, wf_id, Phase.AWAITING_APPROVAL)
    await eventually(lambda: idle(world, wf_id), what="the approval wait")
    return wf_id


async def workflow_runs(world: World, workflow_type: str) -> list[tuple[str, str]]:
    """(workflow id, run id) of every run of `workflow_type` the server knows."""
    query = f'WorkflowType = "{workflow_type}"'
    return [(wf.id, wf.run_id) async for wf in world.client.list_workflows(query)]


async def endpoint_change_runs(world: World) -> list[tuple[str, str]]:
    return await workflow_runs(world, "EndpointChangeWorkflow")


async def quiet(world: World) -> bool:
    """No EndpointChangeWorkflow is running and no running workflow has an activity in flight."""
    async for wf in world.client.list_workflows('ExecutionStatus = "Running"'):
        if wf.workflow_type == "EndpointChangeWorkflow":
            return False
        if (await world.handle(wf.id).describe()).raw_description.pending_activities:
            return False
    return True
