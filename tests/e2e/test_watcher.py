"""`peersync watch` against the chain emulator's real websocket: drops, a SIGKILLed watcher, new validators,
failed txs, detection latency, health, and a moniker squatter. The registry timer is 60 s in every test, so
whatever happens within a test happened through the watcher (its direct start or its nudge)."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from core.contracts import EndpointChangeResult, EndpointStatus, Phase
from core.ids import endpoint_change_id, registry_id
from devnet.processes import ChildProcess
from devnet.scenario import ClusterSpec, ConsumerSpec, NamespaceSpec, Scenario, ValidatorSpec
from devnet.testbed import World, default_world, eventually, random_subnet
from tests.e2e.control_kit import wait_phase
from workflows.registry import RegistryWorkflow

pytestmark = pytest.mark.both_testbeds

SLOW_TIMER = {"PEERSYNC_REGISTRY_REFRESH": "60s"}  # to both processes: only the watcher can act in time
C1, C2, C3, C4 = "alice-consumer-1", "alice-consumer-2", "alice-consumer-3", "alice-consumer-4"
CHANGES = "WorkflowType = 'EndpointChangeWorkflow'"
MOVERS = [f"m{i:02d}" for i in range(1, 21)]


def crowd_world(subnet: str) -> Scenario:
    """alice and 20 other validators (m01..m20 at <subnet>.2..21), all on consumer-1; m01..m10 also on
    consumer-2, m11..m20 on consumer-3. One edit per validator: no edit supersedes another (see the report
    on superseded changes in test_superseded_change_does_not_stall)."""
    names = ["alice", *MOVERS]
    return Scenario(
        allow_cidrs=[f"{subnet}.0/24"],
        block_time=0.5,
        validators=[ValidatorSpec(moniker=n, endpoint=f"{subnet}.{i}") for i, n in enumerate(names, start=1)],
        consumers=[
            ConsumerSpec(chain_id="consumer-1", opted_in=names),
            ConsumerSpec(chain_id="consumer-2", opted_in=["alice", *MOVERS[:10]]),
            ConsumerSpec(chain_id="consumer-3", opted_in=["alice", *MOVERS[10:]]),
        ],
        clusters=[
            ClusterSpec(
                id="alice",
                validator="alice",
                namespaces=[
                    NamespaceSpec(consumer="consumer-1", workload="deployment", replicas=2, signer="remote"),
                    NamespaceSpec(
                        consumer="consumer-2",
                        workload="statefulset",
                        replicas=2,
                        peers_format="init.sh",
                        signer="remote",
                    ),
                    NamespaceSpec(consumer="consumer-3", workload="deployment", peers_format="key"),
                ],
            )
        ],
    )


def consumers_of(world: World, moniker: str) -> list[str]:
    """alice's namespaces whose peer list carries `moniker`."""
    return [
        f"alice-{c.chain_id}"
        for c in world.scenario.consumers
        if moniker in c.opted_in and "alice" in c.opted_in
    ]


async def watched(world: World, **worker: str) -> ChildProcess:
    """A worker and a watcher of cluster alice, the registry's baseline taken, the watcher subscribed."""
    await world.start_worker(**SLOW_TIMER, **worker)
    watcher = await world.start_watcher(**SLOW_TIMER)
    await world.registry_ready(len(world.scenario.validators))
    await world.watcher_connected(watcher)
    return watcher


def peers(text: str) -> list[str]:
    """The `id@host:port` entries of a peers ConfigMap value, whatever its format."""
    return re.findall(r"[0-9a-f]{40}@[^\s,\"']+", text)


def peers_at(text: str, host: str) -> list[str]:
    return [p for p in peers(text) if p.split("@", 1)[1].rsplit(":", 1)[0] == host]


class Edits:
    """Endpoint edits made by a test, each to a fresh host: (moniker, height, host), in order."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.done: list[tuple[str, int, str]] = []

    async def edit(self, moniker: str) -> str:
        """Move `moniker` to a fresh host; returns the id its EndpointChangeWorkflow must have."""
        host = f"{self.world.subnet}.{101 + len(self.done)}"
        height = await self.world.edit_validator(moniker, f"p2p={host}")
        self.done.append((moniker, height, host))
        return endpoint_change_id("alice", self.world.operator(moniker), height)

    def ids(self) -> list[str]:
        return [endpoint_change_id("alice", self.world.operator(m), h) for m, h, _ in self.done]

    def touching(self, namespace: str) -> int:
        return sum(1 for m, _, _ in self.done if namespace in consumers_of(self.world, m))

    def assert_applied(self) -> None:
        """Every moved validator's peer is at its new host, once, in each of its namespaces; none at its old."""
        world = self.world
        published = {v.moniker: v.endpoint for v in world.scenario.validators}
        for moniker, _, host in self.done:
            for ns in consumers_of(world, moniker):
                text = world.configmap_text(ns)
                assert len(peers_at(text, host)) == 1, (ns, moniker, host, text)
                assert not peers_at(text, str(published[moniker])), (ns, moniker, text)


async def all_done(world: World, ids: list[str]) -> None:
    for wf_id in ids:
        result = await world.finished(wf_id, EndpointChangeResult, timeout=60)
        assert result.phase == Phase.DONE, (wf_id, [c.error for c in result.consumers])


async def one_run_each(world: World, expected: list[str]) -> None:
    """Visibility lists exactly the expected EndpointChange ids, each with exactly one run."""

    async def listed() -> dict[str, int] | None:
        runs = await world.runs(CHANGES)
        return dict(runs) if set(runs) >= set(expected) else None

    runs = await eventually(listed, 20, "every change in visibility")
    assert sorted(runs) == sorted(expected), f"unexpected changes: {set(runs) - set(expected)}"
    assert all(n == 1 for n in runs.values()), {i: n for i, n in runs.items() if n != 1}


# 1 ---------------------------------------------------------------------------------------------------------


@pytest.mark.emulated_only(
    reason="drops the websocket through the chain emulator's fault API, amid the edits of a 21-validator crowd"
)
async def test_a_websocket_drop_amid_twenty_edits_applies_all_and_runs_each_change_once(
    tmp_path: Path,
) -> None:
    async with World(tmp_path, crowd_world(random_subnet())) as world:
        watcher = await watched(world)
        log = world.record_kube()
        before = {ns: world.generation(ns) for ns in (C1, C2, C3)}
        edits = Edits(world)

        for moniker in MOVERS[:8]:
            await edits.edit(moniker)
        for wf_id in edits.ids():  # the watcher has handed every one over before the drop
            await world.started(wf_id)

        # Drop every websocket and refuse the reconnects until told otherwise, so that the next edits
        # certainly happen while nobody listens.
        await world.admin("faults", {"drop_websockets": True, "target": "rpc", "fail_next": 1_000_000})
        await world.watcher_connected(watcher, connected=False)
        unseen = [await edits.edit(m) for m in MOVERS[8:11]]
        assert not [i for i in unseen if await world.exists(i)], "started while the watcher was away"
        await world.admin("faults", {"clear": True})
        await world.watcher_connected(watcher)
        # The reconnect's full refresh found them, and the registry started them under the same ids.
        for wf_id in unseen:
            await world.started(wf_id)
            assert (await world.start_input(wf_id))["source"] == "registry"

        for moniker in MOVERS[11:]:
            await edits.edit(moniker)
        assert len(edits.done) == 20

        await all_done(world, edits.ids())
        await one_run_each(world, edits.ids())
        edits.assert_applied()
        for ns in (C1, C2, C3):
            writes, rollouts = log.configmap_data_writes(ns), world.generation(ns) - before[ns]
            # Each sync that changed the peers wrote them once and rolled once; coalescing merges edits.
            assert 1 <= rollouts <= writes <= edits.touching(ns), (ns, rollouts, writes, edits.touching(ns))
        assert (await world.watcher_metrics(watcher))["peersync_watcher_reconnects_total"] == 2


# 2 ---------------------------------------------------------------------------------------------------------


@pytest.mark.emulated_only(
    reason="a 21-validator crowd (21 gentx validators, 40 real nodes) is beyond the suite's time budget; the real runs of this module cover the watcher on the real websocket"
)
async def test_a_killed_watcher_misses_nothing_its_reconnect_refresh_catches_up(tmp_path: Path) -> None:
    async with World(tmp_path, crowd_world(random_subnet())) as world:
        watcher = await watched(world)
        edits = Edits(world)
        await world.started(await edits.edit("m01"))

        await world.kill_worker(watcher)
        registry = world.handle(registry_id("alice"))
        stats = await registry.query(RegistryWorkflow.stats)
        missed = [await edits.edit(m) for m in ("m02", "m11", "m12")]
        assert not [i for i in missed if await world.exists(i)], "started with no watcher and a 60 s timer"

        watcher = await world.start_watcher(**SLOW_TIMER)
        await world.watcher_connected(watcher)
        for wf_id in missed:
            await world.started(wf_id)
            # The new watcher never saw those txs: the registry, nudged by its connect, started them.
            assert (await world.start_input(wf_id))["source"] == "registry"
        assert (await registry.query(RegistryWorkflow.stats)).refreshes > stats.refreshes

        await edits.edit("m13")  # and the new watcher carries on
        await all_done(world, edits.ids())
        await one_run_each(world, edits.ids())
        edits.assert_applied()


# 3 ---------------------------------------------------------------------------------------------------------


@pytest.mark.emulated_only(reason="adds a validator through the chain emulator's admin API")
async def test_a_new_validator_joins_the_registry_through_the_watchers_nudge(world: World) -> None:
    await watched(world)
    log = world.record_kube()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    created = await world.admin("create_validator", {"moniker": "erin", "endpoint": f"{world.subnet}.5"})
    operator = created["operator_address"]

    async def valid() -> bool:
        rows = await world.registry()
        return any(r.operator_address == operator and r.status == EndpointStatus.VALID for r in rows)

    await eventually(valid, 10, "erin valid in the registry")
    assert loop.time() - t0 < 5, "the watcher's nudge, not the 60 s timer"
    code, out, err = await world.peersync("registry", "--json")
    assert code == 0, err
    row = next(r for r in json.loads(out) if r["operator_address"] == operator)
    assert (row["moniker"], row["endpoint"], row["status"]) == ("erin", f"{world.subnet}.5", "valid")
    assert not [e for e in log.events if e[1] == "ConfigMap"], "erin runs no consumer with alice: no write"


# 4 ---------------------------------------------------------------------------------------------------------


@pytest.mark.emulated_only(
    reason="the failed tx is injected by the chain emulator (a real node rejects it before any block)"
)
async def test_a_failed_edit_is_ignored_no_workflow_no_write(world: World) -> None:
    watcher = await watched(world)
    log = world.record_kube()
    before = {ns: world.configmap_text(ns) for ns in (C1, C2, C3)}
    failed = await world.admin(
        "edit_validator",
        {
            "validator": "bob",
            "details": f"p2p={world.subnet}.101",
            "fail": True,
            "fail_keeps_message_events": True,  # so it does arrive on the message.action subscription
        },
    )
    assert failed["code"] != 0
    # A good edit after it: once its change is done, the watcher has read past the failed tx.
    edits = Edits(world)
    await world.finished(await edits.edit("dave"), EndpointChangeResult)

    bob = world.operator("bob")
    assert not await world.exists(endpoint_change_id("alice", bob, failed["height"]))
    assert not [i for i in await world.runs(CHANGES) if bob in i], "no change for bob at all"
    ignored = (
        f"height {failed['height']}: failed tx from {world.account('bob')} (code {failed['code']}) ignored"
    )
    await eventually(lambda: _has(watcher, ignored), 10, "the watcher to log the failed tx")
    assert log.configmap_writes(C2) == 0 and world.configmap_text(C2) == before[C2]  # bob, carol: untouched
    for ns in (C1, C2):
        assert peers_at(world.configmap_text(ns), f"{world.subnet}.2") == peers_at(
            before[ns], f"{world.subnet}.2"
        )
    assert (await world.registry_row("bob")).endpoint == f"{world.subnet}.2"


async def _has(watcher: ChildProcess, text: str) -> bool:
    watcher.raise_if_exited()
    return text in World.log_text(watcher)


# 5 ---------------------------------------------------------------------------------------------------------


@pytest.mark.emulated_only(
    reason="a latency bound: on the real testbed `make bench` measures it, CI load would only make it flaky"
)
async def test_the_watcher_starts_a_change_within_a_fraction_of_a_block(world: World) -> None:
    await watched(world)
    edits = Edits(world)
    detections = []
    for moniker in ("bob", "carol", "dave"):
        wf_id = await edits.edit(moniker)
        await world.started(wf_id, timeout=10)
        history = await world.handle(wf_id).fetch_history()
        started = history.events[0].event_time.ToDatetime().replace(tzinfo=datetime.UTC).timestamp()
        detections.append(started - await world.block_time(edits.done[-1][1]))
        # The registry started it (the one writer of intent), told to look by the watcher's nudge.
        assert (await world.start_input(wf_id))["source"] == "registry"
        assert edits.done[-1][1] in await nudged_heights(world), "the watcher never nudged the registry"
    # Blocks are 0.5 s here; bench/pipeline.py measures the real figure (p99 well under 0.1 block).
    assert max(detections) < 1.0, detections


async def nudged_heights(world: World) -> set[int]:
    """The heights the watcher named in its `refresh` signals to the registry."""
    history = await world.handle(registry_id("alice")).fetch_history()
    heights = set()
    for event in history.events:
        signalled = event.workflow_execution_signaled_event_attributes
        if signalled.signal_name == "refresh" and signalled.input.payloads:
            height = json.loads(signalled.input.payloads[0].data).get("height")
            if height is not None:
                heights.add(height)
    return heights


# 7 ---------------------------------------------------------------------------------------------------------


def squatting_world(subnet: str) -> Scenario:
    """The default world plus consumer-4, run by alice and bob only: a namespace where bob is the only peer."""
    data = default_world(subnet).model_dump()
    data["consumers"].append({"chain_id": "consumer-4", "opted_in": ["alice", "bob"]})
    data["clusters"][0]["namespaces"].append({"consumer": "consumer-4"})
    return Scenario.model_validate(data)


@pytest.mark.emulated_only(
    reason="two validators with one moniker: the real testbed's keyring names keys by moniker"
)
async def test_a_moniker_squatter_changes_nothing_for_the_real_bob(tmp_path: Path) -> None:
    async with World(tmp_path, squatting_world(random_subnet())) as world:
        await watched(world)
        bob, carol = world.operator("bob"), world.operator("carol")
        bob_host = f"{world.subnet}.2"
        bob_row = await world.registry_row("bob")
        before = {ns: world.configmap_text(ns) for ns in (C1, C2, C3, C4)}
        generations = {ns: world.generation(ns) for ns in (C1, C2, C3, C4)}
        log = world.record_kube()

        renamed = await world.admin("edit_validator", {"validator": carol, "moniker": "bob"})
        squat = endpoint_change_id("alice", carol, renamed["height"])
        # carol's entry would now carry the node id derived from "bob" (bob's): a moniker collision leaves
        # no node id to derive, so the change is refused at once, with the reason, and nothing is written.
        progress = await wait_phase(world, squat, Phase.FAILED, timeout=30)
        assert "moniker 'bob' is also used by" in (progress.reason or ""), progress

        code, out, err = await world.peersync("registry", "--json")
        assert code == 0, err
        rows = {r["operator_address"]: r for r in json.loads(out)}
        assert rows[bob]["moniker"] == rows[carol]["moniker"] == "bob"
        assert rows[bob]["collision"] is True and rows[carol]["collision"] is True
        # bob's row is bob's: same endpoint, same height of its last change.
        assert (rows[bob]["endpoint"], rows[bob]["status"], rows[bob]["height"]) == (
            bob_row.endpoint,
            "valid",
            bob_row.height,
        )
        assert [i for i in await world.runs(CHANGES) if bob in i] == [], "no change was started for bob"
        for ns in (C1, C2, C4):
            # bob's entry (node id and address) is exactly what it was, and nobody else took bob's address.
            assert peers_at(world.configmap_text(ns), bob_host) == peers_at(before[ns], bob_host)
            assert len(peers_at(before[ns], bob_host)) == 1
        # Where bob is the only other peer, the rename is no event at all: no write, no rollout.
        assert log.configmap_writes(C4) == 0 and world.generation(C4) == generations[C4]
        assert world.configmap_text(C4) == before[C4]
        assert world.configmap_text(C3) == before[C3] and world.generation(C3) == generations[C3]
        # carol's entry stays exactly as it was (her node keeps its key), at her own address.
        for ns in (C1, C2):
            assert len(peers_at(world.configmap_text(ns), f"{world.subnet}.3")) == 1
        # And a reconcile finds nothing to repair: the colliding validators' entries are kept, never rewritten.
        code, out, err = await world.peersync("reconcile", "--json")
        assert code == 0, err
        assert all(log.configmap_data_writes(ns) == 0 for ns in (C1, C2, C3, C4)), out


# 8 ---------------------------------------------------------------------------------------------------------


@pytest.mark.emulated_only(reason="drops the websocket through the chain emulator's fault API")
async def test_watch_health_follows_the_chain_connection_and_counts_reconnects(world: World) -> None:
    watcher = await world.start_watcher(**SLOW_TIMER)  # no worker needed: the nudges only land in Temporal
    await world.watcher_connected(watcher)
    metrics = await world.watcher_metrics(watcher)
    assert metrics["peersync_watcher_reconnects_total"] == 1 and metrics["peersync_watcher_connected"] == 1

    # The node goes away and refuses the websocket upgrade until cleared: /healthz turns 503 while the
    # watcher retries (with backoff), and 200 once it has resubscribed.
    await world.admin("faults", {"drop_websockets": True, "target": "rpc", "fail_next": 1_000_000})
    await world.watcher_connected(watcher, connected=False, timeout=5)
    assert (await world.watcher_metrics(watcher))["peersync_watcher_connected"] == 0

    async def refused(n: int) -> bool:
        return (await world.chain_state())["faults"]["rpc"]["failed_total"] >= n

    await eventually(lambda: refused(2), 10, "two refused reconnects")
    assert await world.watcher_health(watcher) == 503
    await world.admin("faults", {"clear": True})
    await world.watcher_connected(watcher, timeout=15)
    metrics = await world.watcher_metrics(watcher)
    assert metrics["peersync_watcher_reconnects_total"] == 2 and metrics["peersync_watcher_connected"] == 1
    assert (await world.chain_state())["subscriptions"] == 2

    # Each (re)connect asked the registry for a full refresh (the ask follows the subscription: await it).
    async def two_refreshes() -> bool:
        history = await world.handle(registry_id("alice")).fetch_history()
        asked = [
            e
            for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")
            and e.workflow_execution_signaled_event_attributes.signal_name == "refresh"
        ]
        return len(asked) == 2

    await eventually(two_refreshes, 10, "a refresh asked on each (re)connect")


# A change superseded by a newer edit ends at once instead of probing a dead endpoint ------------------------------------


async def test_a_superseded_change_does_not_stall(world: World) -> None:
    await watched(world)
    bob = world.operator("bob")
    # A typo: nothing listens at the first endpoint. The operator corrects it at once.
    typo = await world.edit_validator("bob", f"p2p={world.subnet}.101", reachable=False)
    first = endpoint_change_id("alice", bob, typo)
    await world.started(first)
    fixed = await world.edit_validator("bob", f"p2p={world.subnet}.102")
    result = await world.finished(endpoint_change_id("alice", bob, fixed), EndpointChangeResult)
    assert result.phase == Phase.DONE and f"@{world.subnet}.102:" in world.configmap_text(C1)

    async def closed() -> bool:
        return (await world.handle(first).describe()).status != WorkflowExecutionStatus.RUNNING

    await eventually(closed, 10, f"the superseded change {first} to end")
    older = await world.finished(first, EndpointChangeResult)
    assert older.phase == Phase.SUPERSEDED and not older.consumers


# A fix (workers/watcher.py): Temporal unreachable for longer than the client's own retries -----------------


@pytest.mark.emulated_only(
    reason="a Temporal outage: the chain side is the websocket the real runs of this module already use"
)
async def test_the_watcher_outlives_a_temporal_outage_and_catches_up(world: World) -> None:
    """Before the fix, the RPCError of a failed hand-over ended `peersync watch` (and `peersync devnet` with it)."""
    watcher = await watched(world)
    assert world.devnet.temporal is not None
    await world.devnet.temporal.stop()
    edits = Edits(world)
    wf_id = await edits.edit("bob")
    # The client gives up after ~10 s of retries; the watcher must treat that like a lost connection.
    await eventually(lambda: _has(watcher, "Temporal: "), 20, "the watcher to give up on this hand-over")
    watcher.raise_if_exited()
    await world.devnet.temporal.start()
    # Its reconnect asks for the full refresh, which (once Temporal answers) starts the change it lost.
    result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE
    edits.assert_applied()
    watcher.raise_if_exited()


# A fix (workers/cli_watch.py): a watcher that cannot hand anything to Temporal does not start -------------


@pytest.mark.emulated_only(reason="exits before it subscribes to any chain")
async def test_a_watcher_without_its_temporal_namespace_exits_at_start_with_one_line(world: World) -> None:
    """Unreachable Temporal ended `peersync watch` with a traceback; a missing namespace left it running and
    retrying every hand-over forever. Both are now one line and exit 1, before it subscribes to anything."""
    cases = [
        ({"TEMPORAL_ADDRESS": "127.0.0.1:1"}, "cannot reach Temporal at 127.0.0.1:1: "),
        (
            {"TEMPORAL_NAMESPACE": "no-such-ns"},
            f'Temporal namespace "no-such-ns" does not exist at {world.manifest.temporal_address} '
            "(create it: temporal operator namespace create --namespace no-such-ns)",
        ),
    ]
    for env, reason in cases:
        watcher = await world.start_watcher(**env)
        try:
            code = await asyncio.wait_for(watcher.wait(), 30)
        except TimeoutError:
            code = None
        log = world.log_text(watcher)
        assert code == 1 and "Traceback" not in log, (env, code, log)
        lines = [line for line in log.splitlines() if line.startswith("peersync: ")]
        assert len(lines) == 1 and reason in lines[0], (env, log)


@pytest.mark.emulated_only(reason="the watcher's own HTTP server; no chain or cluster request")
async def test_the_watcher_does_not_log_each_health_or_metrics_request(world: World) -> None:
    """An orchestrator probes /healthz every few seconds: an access log line for each would drown the log."""
    watcher = await world.start_watcher(**SLOW_TIMER)
    await world.watcher_connected(watcher)
    for _ in range(3):
        assert await world.watcher_health(watcher) == 200
        await world.watcher_metrics(watcher)
    log = world.log_text(watcher)
    assert "subscribed to" in log, log  # the watcher's own INFO lines are there
    assert "GET /healthz" not in log and "GET /metrics" not in log and "aiohttp.access" not in log, log
