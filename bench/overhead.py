"""Overhead per consumer (issue 11 item 8): what peersync adds per consumer beyond the rollout itself.

One emulated devnet (real worker and watcher processes, default PEERSYNC_MAX_PARALLEL_ROLLOUTS, restart
strategy, 0.5 s blocks) with 10 consumer namespaces and three movers opted in to 2, 5 and 10 of them. Each
move is timed from its block's commit to its EndpointChangeWorkflow closing (DONE), minus the emulated
rollout of every consumer. What is left, divided by the consumers, is peersync's overhead per consumer;
the slope over 2, 5 and 10 consumers is its marginal cost, the intercept its fixed cost (detection,
validate, discover, probe).

**What counts as the rollout** (not peersync's): from the restart's write of the workload to the later of
the emulator's rollout verdict (kubectl's) and the first block the chain commits after the node's end of
catch-up (pod Ready + the configured catch-up seconds). That block belongs to the rollout because catch-up
gating (unchanged) opens only once a caught-up node is seen at a higher height than first seen caught up:
no observer can tell a signing node earlier, and the wait for it is the chain's block time (0.5 s here, up
to a whole block), not a polling interval. Everything else is overhead: every look after that block, every
workflow task, hand-off and activity. The "strict" rows count that block wait as overhead too (the
definition of the "before" runs, which ended the rollout at the catch-up itself).

What item 8 changed, and what it costs the nodes and the apiserver: catch-up gating looks at a restarted
node every 50 ms at first (at most 20 `/status` a second per node, the interval growing to 2% of the time
waited, at most 1 s, so a long replay is looked at once a second) and reads the ready pods from the
apiserver once a second (one pod list) plus once to confirm the set before the gate opens; the short sync
steps (compute, read, probe, write, restart) each run one local attempt inside one workflow task (their
retries as before, as regular activities); the rollout slot is asked by a signal from the sync itself.
Then (second round of item 8): the rollout wait and the catch-up wait are ONE activity (`wait_restarted`,
the same two judgements and deadlines in turn: one workflow task and one dispatch fewer per restart); a
sync's reads (desired peers, ConfigMap, probe of the new peers) are one local step (`plan_sync`) instead of
three; and a change's sync asks for its rollout slot by a local activity at its start, beside those reads,
so the slots workflow's round trip (about 200 ms here before) overlaps them instead of following the write
(a sync that needs no restart gives the slot back once granted). Before that round, on the same day and
machine: 674 ms per consumer at 10 consumers (load 1.2 -> 2.4; the run committed before it said 449 ms at
load 1.8: the spread between runs is large here); after it, 418 ms (load 1.2 -> 0.7) and the run below.
Per consumer, from a sync's ask to its restart's wait: 470 ms before, 107 ms after (one history, 5
consumers, an idle moment); the catch-up gate opens 10-55 ms after the chain's first block past the
node's catch-up. What is left is in the
breakdown: the ConsumerSync's three workflow tasks (a Python task takes tens of ms on this shared 2-core
machine, the local steps' kube and chain calls included) and the EndpointChange's
one-consumer-at-a-time hand-off (reply, its own task, the next ask).

The breakdown tiles the critical path of each consumer — the ask, the ConsumerSync's workflow tasks and
activities, the RolloutSlots round trip, the reply, the EndpointChange's task that asks the next one —
from the event times of the three workflows' histories, each gap named by the event that ends it, averaged
per consumer over every move. The machine is shared: the load average is recorded with the results.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from activities.rollout_status import verdict
from bench.report import Row
from core.contracts import EndpointChangeResult, Phase
from core.ids import consumer_sync_id, rollout_slots_id
from devnet.scenario import ClusterSpec, ConsumerSpec, NamespaceSpec, Scenario, ValidatorSpec
from devnet.stack import Devnet, DevnetOptions
from devnet.testbed import World, eventually, random_subnet

COUNTS = (2, 5, 10)
REPEATS = 3
CATCH_UP_SECONDS = 1.0  # the emulated node's catch-up after its pod turns Ready (World's setting)
KUBE_STEP = 0.05  # seconds per kube-controller step: a Recreate rollout takes a few
TARGET_MS = 100.0
DISPATCH = "activity dispatch (scheduled -> started), all activities"
EMULATED = "of which the emulated rollout + catch-up + the chain's next block (subtracted)"
BLOCK_WAIT = "of which the chain's next block after catch-up (in the rollout; overhead in the strict rows)"
# Per consumer, the definition's "before": the previous code (issue 11 item 8's first run) and this code
# base's own rerun before item 8 (registry snapshots, 2026-12-06), both with the strict definition.
BEFORE = {2: (2508.8, 2024.2), 5: (2287.0, 1824.8), 10: (1776.1, 1833.3), "slope": (1559.5, 1791.4)}


def scenario(counts: Iterable[int] = COUNTS) -> Scenario:
    """Cluster validator v000 runs every consumer; mover m<N> is opted in to the first N consumers."""
    subnet = random_subnet()
    most = max(counts)
    movers = [f"m{n:02d}" for n in counts]
    return Scenario(
        allow_cidrs=[f"{subnet}.0/24"],
        block_time=0.5,
        validators=[ValidatorSpec(moniker="v000", endpoint=f"{subnet}.1")]
        + [ValidatorSpec(moniker=m, endpoint=f"{subnet}.{10 + i}") for i, m in enumerate(movers)],
        consumers=[
            ConsumerSpec(chain_id=f"ovh-{c}", opted_in=["v000", *(f"m{n:02d}" for n in counts if c < n)])
            for c in range(most)
        ],
        clusters=[
            ClusterSpec(
                id="alice",
                validator="v000",
                namespaces=[NamespaceSpec(consumer=f"ovh-{c}") for c in range(most)],
            )
        ],
    )


class OverheadWorld(World):
    """A World whose emulators say when each rollout and each node's catch-up really ended."""

    def _make_devnet(self, scenario: Scenario, opts: DevnetOptions) -> Devnet:
        return Devnet(scenario, opts.model_copy(update={"node_catch_up_seconds": CATCH_UP_SECONDS}))

    async def __aenter__(self) -> OverheadWorld:
        await super().__aenter__()
        self.restart_written: dict[str, list[float]] = defaultdict(list)  # namespace -> generation bumps
        self.rolled_out: dict[str, list[float]] = defaultdict(list)  # namespace -> rollout verdict done
        self.node_ready: dict[str, list[float]] = defaultdict(list)  # chain id -> node restarted (pod Ready)
        self._generation: dict[str, int] = {}
        self.kube().store.add_listener(self._on_kube)
        assert self.devnet.chain is not None
        fleet = self.devnet.chain.nodes
        seen = fleet.restarted

        def restarted(host: str, chain_id: str) -> Any:
            self.node_ready[chain_id].append(time.time())
            return seen(host, chain_id)

        fleet.restarted = restarted  # the devnet's NodeRestarts listener calls it when a new pod turns Ready
        return self

    def _on_kube(self, event: Any) -> None:
        if event.rt.kind not in ("Deployment", "StatefulSet") or event.type == "DELETED":
            return
        now, ns, obj = time.time(), event.new.namespace, event.new.obj
        generation = int(obj["metadata"].get("generation", 0))
        if ns in self._generation and generation > self._generation[ns]:
            self.restart_written[ns].append(now)
        self._generation[ns] = generation
        kind = "deployment" if event.rt.kind == "Deployment" else "statefulset"
        if len(self.rolled_out[ns]) < len(self.restart_written[ns]) and verdict(kind, obj).done:
            self.rolled_out[ns].append(now)

    def emulated(self, namespace: str, chain_id: str, start: float, end: float) -> tuple[float, float]:
        """The rollout of the restart written within [start, end] (see the module's definition), and of it
        the wait for the chain's first block after the node's catch-up."""
        assert self.devnet.chain is not None
        blocks = [b.time_ns / 1e9 for b in self.devnet.chain.chain.blocks]
        total = block_wait = 0.0
        for i, written in enumerate(self.restart_written[namespace]):
            if not start <= written <= end:
                continue
            done = self.rolled_out[namespace][i] if i < len(self.rolled_out[namespace]) else end
            ready = [t for t in self.node_ready[chain_id] if t >= written]
            caught = ready[0] + CATCH_UP_SECONDS if ready else done
            following = min((b for b in blocks if b > caught), default=caught)
            total += max(done, following) - written
            block_wait += max(done, following) - max(done, caught)
        return total, block_wait


# ---- histories -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Ev:
    when: float
    wf: str  # EC | CS | slots
    kind: str  # EventType name without the prefix
    name: str  # activity type or signal name, when there is one


def _events(history: Any, wf: str) -> list[Ev]:
    activities: dict[int, str] = {}
    out: list[Ev] = []
    for e in history.events:
        e: HistoryEvent
        kind = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
        name = ""
        if e.HasField("activity_task_scheduled_event_attributes"):
            name = activities[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        elif e.HasField("activity_task_started_event_attributes"):
            name = activities.get(e.activity_task_started_event_attributes.scheduled_event_id, "")
        elif e.HasField("activity_task_completed_event_attributes"):
            name = activities.get(e.activity_task_completed_event_attributes.scheduled_event_id, "")
        elif e.HasField("workflow_execution_signaled_event_attributes"):
            name = e.workflow_execution_signaled_event_attributes.signal_name
        out.append(Ev(e.event_time.ToDatetime().timestamp(), wf, kind, name))
    return out


def label(ev: Ev) -> str:
    """What the gap that ends with `ev` was spent on."""
    wf = "EndpointChange" if ev.wf == "EC" else "ConsumerSync"
    if ev.wf == "slots" or (ev.kind == "WORKFLOW_EXECUTION_SIGNALED" and ev.name == "slot_granted"):
        return "slot acquire: RolloutSlots round trip -> slot_granted"
    if ev.wf == "CS" and ev.kind in ("WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED"):
        return "ask hand-off: EC asks (enqueue_consumer_sync) -> CS signalled"
    if ev.wf == "EC" and ev.kind == "WORKFLOW_EXECUTION_SIGNALED":
        return "reply: CS signals sync_done -> EC signalled"
    if ev.kind == "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED":
        return "a signal the sync sent (slot ask or release) delivered"
    if ev.kind == "ACTIVITY_TASK_STARTED":
        return DISPATCH
    if ev.kind in ("ACTIVITY_TASK_COMPLETED", "ACTIVITY_TASK_FAILED"):
        return f"activity {ev.name} (run)"
    if ev.kind in ("WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"):
        return f"workflow task dispatch ({wf})"
    if ev.kind == "WORKFLOW_TASK_COMPLETED":
        # Local activities run inside the task: their time is here, their markers follow it.
        return f"workflow task run ({wf}; local activities included)"
    if ev.kind in (
        "ACTIVITY_TASK_SCHEDULED",
        "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        "WORKFLOW_PROPERTIES_MODIFIED",
        "MARKER_RECORDED",
        "TIMER_STARTED",
        "TIMER_CANCELED",
    ):
        return f"workflow task commands recorded ({wf})"
    return f"{ev.wf}: {ev.kind.lower()}"


@dataclasses.dataclass
class Move:
    consumers: int
    total: float  # block commit -> EndpointChange closed
    emulated: float  # sum over its consumers
    block_wait: float  # of `emulated`: the chain's next block after each node's catch-up
    parts: dict[str, float]  # critical-path seconds per label, summed over its consumers

    @property
    def per_consumer_ms(self) -> float:
        return (self.total - self.emulated) / self.consumers * 1000


def _within_task(events: list[Ev], ev: Ev) -> bool:
    """A signal that landed while a task of the same workflow was running (a slot granted to an early ask): it
    waited for that task, so the gap it would end belongs to the task, not to the signal."""
    if ev.kind != "WORKFLOW_EXECUTION_SIGNALED":
        return False
    started = [e.when for e in events if e.kind == "WORKFLOW_TASK_STARTED" and e.when <= ev.when]
    ended = [e.when for e in events if e.kind == "WORKFLOW_TASK_COMPLETED" and e.when <= ev.when]
    return bool(started) and (not ended or max(started) > max(ended))


async def _analyse(world: OverheadWorld, wf_id: str, result: EndpointChangeResult, committed: float) -> Move:
    ec = _events(await world.handle(wf_id).fetch_history(), "EC")
    start, end = ec[0].when, ec[-1].when
    slots = [
        e
        for e in _events(await world.handle(rollout_slots_id("alice")).fetch_history(), "slots")
        if start <= e.when <= end
    ]
    paths: list[tuple[float, float, list[Ev], str, str]] = []  # ask, reply, events, namespace, chain id
    for synced in result.consumers:
        ns = synced.consumer.namespace
        cs = _events(await world.handle(consumer_sync_id("alice", ns)).fetch_history(), "CS")
        cs = [e for e in cs if start <= e.when <= end]
        ask = next(e for e in cs if e.kind == "WORKFLOW_EXECUTION_SIGNALED")
        # The sync's last task sends the reply (and gives the rollout slot back); a new run's first task may
        # give back a stale slot: the reply is the last signal it sends.
        reply = [e for e in cs if e.kind == "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED"][-1]
        done = next(
            e
            for e in ec
            if e.kind == "WORKFLOW_EXECUTION_SIGNALED" and e.name == "sync_done" and e.when >= reply.when
        )
        on_path = [e for e in cs if ask.when <= e.when <= reply.when and not _within_task(cs, e)]
        granted = [e for e in cs if e.name == "slot_granted"]
        acquire = [e for e in cs if e.name == "acquire_rollout_slot" and e.kind == "ACTIVITY_TASK_SCHEDULED"]
        if acquire and granted:
            on_path += [e for e in slots if acquire[0].when <= e.when <= granted[0].when]
        paths.append((ask.when, done.when, [*on_path, done], ns, synced.consumer.chain_id))
    paths.sort()
    parts: dict[str, float] = defaultdict(float)
    emulated = block_wait = 0.0
    for i, (ask, done, events, ns, chain_id) in enumerate(paths):
        # Between two consumers: the EndpointChange's task that takes the reply and asks the next one.
        if i + 1 < len(paths):
            events = events + [e for e in ec if done < e.when < paths[i + 1][0]] + paths[i + 1][2][:1]
        events.sort(key=lambda e: e.when)
        prev = ask
        for e in events:
            parts[label(e)] += max(e.when - prev, 0.0)
            prev = max(prev, e.when)
        rollout, waited = world.emulated(ns, chain_id, ask, done)
        emulated, block_wait = emulated + rollout, block_wait + waited
    parts[EMULATED], parts[BLOCK_WAIT] = -emulated, -block_wait
    return Move(len(result.consumers), end - committed, emulated, block_wait, dict(parts))


async def _new_change(world: World, seen: set[str]) -> str:
    """The id of the EndpointChangeWorkflow this move started (whoever started it, whatever its id)."""

    async def new() -> str | None:
        ids = {w.id async for w in world.client.list_workflows("WorkflowType = 'EndpointChangeWorkflow'")}
        fresh = ids - seen
        return next(iter(fresh)) if fresh else None

    wf_id = await eventually(new, timeout=30, what="the move's EndpointChangeWorkflow")
    seen.add(wf_id)
    return wf_id


async def measure(tmp: Path, counts: tuple[int, ...] = COUNTS, repeats: int = REPEATS) -> list[Move]:
    async with OverheadWorld(tmp, scenario(counts), kube_step=KUBE_STEP) as world:
        await world.start_worker()
        await world.start_watcher(PEERSYNC_REGISTRY_REFRESH="60s")
        await world.registry_ready(validators=1 + len(counts))
        seen: set[str] = set()
        moves: list[Move] = []
        for r in range(repeats):
            for i, n in enumerate(counts):  # interleaved, so a burst of load elsewhere hits every count
                height = await world.edit_validator(
                    f"m{n:02d}", f"p2p={world.subnet}.{100 + 40 * (r % 2) + i}"
                )
                wf_id = await _new_change(world, seen)
                result = await world.finished(wf_id, EndpointChangeResult, timeout=120)
                assert result.phase == Phase.DONE and len(result.consumers) == n, result
                moves.append(await _analyse(world, wf_id, result, await world.block_time(height)))
    return moves


def _median_ms(moves: list[Move], field: str) -> float:
    return statistics.median(getattr(m, field) for m in moves) * 1000


def _before(key: int | str) -> str:
    previous, rerun = BEFORE.get(key, (None, None))
    if previous is None or rerun is None:
        return "(info)"
    return f"(before: {previous:,.1f} previous code; {rerun:,.1f} rerun)"


def rows(moves: list[Move], load: tuple[float, float]) -> list[Row]:
    counts = sorted({m.consumers for m in moves})
    out: list[Row] = []
    medians: dict[int, float] = {}
    strict: dict[int, float] = {}  # the before runs' definition: the next block is overhead too
    for n in counts:
        of_n = [m for m in moves if m.consumers == n]
        medians[n] = statistics.median(m.total - m.emulated for m in of_n)
        strict[n] = statistics.median(m.total - m.emulated + m.block_wait for m in of_n)
        out.append(
            Row(f"{n} consumers: block -> change DONE, median of {len(of_n)}", _median_ms(of_n, "total"),
                "ms", "(info)", True)
        )  # fmt: skip
        out.append(
            Row(f"{n} consumers: emulated rollout + catch-up + next block, median",
                _median_ms(of_n, "emulated"), "ms", "(info)", True)
        )  # fmt: skip
        per = medians[n] / n * 1000
        last = n == counts[-1]
        out.append(
            Row(f"{n} consumers: overhead per consumer, (total - emulated) / {n}", per, "ms",
                f"<= {TARGET_MS:.0f}" if last else "(info)", per <= TARGET_MS or not last)
        )  # fmt: skip
        out.append(
            Row(f"{n} consumers: overhead per consumer, strict (the next block counted as overhead)",
                strict[n] / n * 1000, "ms", _before(n), True)
        )  # fmt: skip
    if len(counts) > 1:
        slope, intercept = statistics.linear_regression(counts, [medians[n] for n in counts])
        out.append(
            Row("overhead: marginal cost per consumer (slope over the counts)", slope * 1000, "ms",
                f"<= {TARGET_MS:.0f}", slope * 1000 <= TARGET_MS)
        )  # fmt: skip
        strict_slope, _ = statistics.linear_regression(counts, [strict[n] for n in counts])
        out.append(
            Row("overhead: marginal cost per consumer, strict", strict_slope * 1000, "ms", _before("slope"),
                True)
        )  # fmt: skip
        out.append(Row("overhead: fixed cost per change (intercept)", intercept * 1000, "ms", "(info)", True))
    consumers = sum(m.consumers for m in moves)
    totals: dict[str, float] = defaultdict(float)
    for m in moves:
        for part, seconds in m.parts.items():
            totals[part] += seconds
    order = sorted((p for p in totals if p not in (EMULATED, BLOCK_WAIT)), key=lambda p: -totals[p])
    for part in [*order, EMULATED, BLOCK_WAIT]:
        out.append(Row(f"per consumer: {part}", totals[part] / consumers * 1000, "ms", "(breakdown)", True))
    path = sum(v for p, v in totals.items() if p != BLOCK_WAIT) / consumers * 1000
    out.append(
        Row("per consumer: critical path beyond the rollout (sum of the above but its 'of which')", path,
            "ms", "(breakdown)", True)
    )  # fmt: skip
    out.append(Row("load average (1 min) at start / end", load[0], f"/ {load[1]:.2f}", "(info)", True))
    return out


async def run() -> list[Row]:
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        moves = await measure(Path(tmp))
    return rows(moves, (load0, os.getloadavg()[0]))
