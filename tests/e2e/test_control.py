"""Human control of an EndpointChangeWorkflow on the devnet (DESIGN invariant 7): pause/resume at step
boundaries, cancel before anything is restarted (and "too late" once syncing), the blocked gate of an
unreachable endpoint with approve/cancel, PEERSYNC_REQUIRE_APPROVAL, cancelling from Temporal (the UI's
button) mid-rollout, and one workflow per change.

The operator's commands are the real `peersync` CLI; the new endpoint is a Node the test brings up when it
wants the probe to pass. In most tests bob moves to <subnet>.22 as an operator override
(`peersync update --validator bob --endpoint ...`), which touches alice-consumer-1 and -2 (bob is not opted
in to consumer-3).
"""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.temporal_calls import TemporalCalls
from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from core.registry_state import ChangeEvent
from devnet.testbed import World, eventually
from tests.e2e.control_kit import (
    Node,
    activities,
    awaiting_approval,
    current_details,
    endpoint_change_runs,
    idle,
    one_line_refusal,
    peersync_ok,
    quiet,
    snapshot,
    status,
    update,
    wait_phase,
    workflow_runs,
    workflow_task_failures,
)
from workers.settings import load_settings
from workflows.activity_contracts import StartChangesInput
from workflows.policies import OPERATOR_CANCELLED

AFFECTED = ("alice-consumer-1", "alice-consumer-2")
CHAINS = ("consumer-1", "consumer-2")
SHORT_PROBE = {"PEERSYNC_PROBE_BUDGET": "2s"}  # blocked after 2 s instead of policies.PROBE's 5 minutes


def assert_moved(world: World, before: dict[str, tuple[str, int]], host: str) -> None:
    """bob's peers point at `host` in the affected namespaces, each rolled out exactly once; consumer-3
    (bob not opted in) untouched."""
    for ns in AFFECTED:
        _, generation = before[ns]
        assert f"@{host}:" in world.configmap_text(ns), world.configmap_text(ns)
        assert f"@{world.subnet}.2:" not in world.configmap_text(ns)
        assert world.generation(ns) == generation + 1, ns
    assert snapshot(world)["alice-consumer-3"] == before["alice-consumer-3"]


async def assert_operator_cancelled(world: World, wf_id: str) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await world.finished(wf_id, EndpointChangeResult, timeout=15)
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == OPERATOR_CANCELLED
    assert (await world.progress(wf_id)).phase == Phase.CANCELLED


async def _listed_as(world: World, wf_id: str, phase: str) -> bool:
    """`peersync status` lists the change, in `phase` (a probe can last minutes: it must not be hidden)."""
    code, out, err = await world.peersync("status", "--json")
    assert code == 0, err
    return any(row["workflow_id"] == wf_id and row["phase"] == phase for row in json.loads(out))


async def _probe_retried(world: World, wf_id: str) -> bool:
    """The workflow runs each probe attempt itself (workflows/probe_rounds.py): its progress counts them."""
    probe = (await world.progress(wf_id)).probe
    return probe is not None and probe.attempts > 1 and not probe.passed


# ---- 1. pause / resume ----------------------------------------------------------------------------


async def test_pause_holds_at_the_next_step_boundary_and_resume_completes(world: World) -> None:
    worker = await world.start_worker()
    await world.registry_ready()
    before = snapshot(world)
    new = f"{world.subnet}.22"
    node = Node(new)
    async with node:
        # Nothing answers at the new address yet: the probe step retries (the gate before any consumer).
        wf_id = await update(world, "--validator", "bob", "--endpoint", new)
        await wait_phase(world, wf_id, Phase.PROBING)
        await eventually(lambda: _listed_as(world, wf_id, "probing"), what="the probing change listed")
        await eventually(lambda: _probe_retried(world, wf_id), what="a retried probe")
        assert "Traceback" not in world.log_text(worker)  # waiting for a node is no worker error
        await peersync_ok(world, "pause", wf_id)
        await eventually(lambda: _paused(world, wf_id), what="the pause to be seen")

        # The node comes up: the probe passes mid-pause, and the workflow holds at the boundary before syncing.
        await node.up()
        await eventually(lambda: node.probed(*CHAINS), what="the probe to reach the node")
        await eventually(lambda: idle(world, wf_id), what="the hold at the boundary")
        progress = await world.progress(wf_id)
        assert progress.paused and progress.phase == Phase.PROBING
        assert "(paused)" in await current_details(world, wf_id)
        assert all(c.state == "waiting" for c in progress.consumers)
        assert snapshot(world) == before  # no ConfigMap written, nothing restarted while paused
        assert (await world.registry_row("bob")).override is None  # not even the override pinned yet

        await peersync_ok(world, "resume", wf_id)
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE
    assert sorted(c.consumer.namespace for c in result.consumers) == list(AFFECTED)
    assert_moved(world, before, new)
    assert (await world.registry_row("bob")).override == new


async def _paused(world: World, wf_id: str) -> bool:
    return (await world.progress(wf_id)).paused


# ---- 2. cancel before any restart; "too late" once syncing; 5. cancel from Temporal mid-rollout -----


async def test_cancel_before_any_restart_ends_the_change_without_writes(world: World) -> None:
    """Cancelled while the probe still retries (its 5-minute budget is not waited out), and cancelled while
    awaiting approval (after the probe passed): both end OperatorCancelled with nothing written or pinned."""
    await world.start_worker(PEERSYNC_REQUIRE_APPROVAL="true")
    await world.registry_ready()
    before = snapshot(world)
    async with Node(f"{world.subnet}.23", moniker="carol") as carols:
        await carols.up()
        probing = await update(world, "--validator", "bob", "--endpoint", f"{world.subnet}.22")
        waiting = await update(world, "--validator", "carol", "--endpoint", f"{world.subnet}.23")
        await wait_phase(world, probing, Phase.PROBING)
        await wait_phase(world, waiting, Phase.AWAITING_APPROVAL)

        for wf_id in (probing, waiting):
            out = await peersync_ok(world, "cancel", wf_id, "--reason", "wrong address")
            assert "wrong address" in out
        for wf_id in (probing, waiting):
            await assert_operator_cancelled(world, wf_id)
            assert (await status(world, wf_id)) == WorkflowExecutionStatus.FAILED
    assert snapshot(world) == before  # no ConfigMap written, no generation bump
    for moniker in ("bob", "carol"):
        assert (await world.registry_row(moniker)).override is None
    assert await workflow_runs(world, "ConsumerSyncWorkflow") == []  # no consumer was even asked


async def test_cancel_is_too_late_once_syncing_and_a_temporal_cancel_stops_the_rollout(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    # Consumers are asked one at a time and a cancel stops before the next one (tests/e2e/test_turns.py):
    # it is too late only once the last consumer (consumer-2, a StatefulSet) is being synced.
    gen0 = world.generation("alice-consumer-2")
    stall = {
        "type": "stall",
        "resource": "statefulsets",
        "namespace": "alice-consumer-2",
        "name": world.workload("alice-consumer-2")["metadata"]["name"],
    }
    await world.kube_fault(stall)  # consumer-2's rollout makes no progress until the fault is cleared
    async with Node(f"{world.subnet}.22") as node:
        await node.up()
        wf_id = await update(world, "--validator", "bob", "--endpoint", f"{world.subnet}.22")
        await wait_phase(world, wf_id, Phase.SYNCING)
        await eventually(
            lambda: _generation_is(world, "alice-consumer-2", gen0 + 1), what="consumer-2's rollout to start"
        )

        code, _, err = await world.peersync("cancel", wf_id)
        one_line_refusal(code, err, "too late", "every consumer")
        assert (await world.progress(wf_id)).phase == Phase.SYNCING  # the refused cancel changed nothing

        # What the Temporal UI's "Cancel" button does: the workflow ends CANCELED at once, and whatever it
        # was waiting on is cancelled, not left running or failing.
        await world.handle(wf_id).cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await world.finished(wf_id, EndpointChangeResult, timeout=15)
        assert isinstance(failure.value.cause, CancelledError)
        assert (await status(world, wf_id)) == WorkflowExecutionStatus.CANCELED
        assert (await world.progress(wf_id)).phase == Phase.CANCELLED
        assert await workflow_task_failures(world, wf_id) == []
        assert all(outcome not in ("failed", "timed-out") for _, outcome in await activities(world, wf_id))

    # Nothing is stuck: once the cluster lets it, every workflow still running (the registry, the consumer
    # syncs, the rollout slots) goes quiet. A sync it had already asked for still runs: the desired peers
    # (chain + the pinned override) did not change with the cancel.
    world.kube().clear_faults()
    await eventually(lambda: quiet(world), what="every workflow to go quiet")
    assert world.generation("alice-consumer-2") == gen0 + 1
    log = world.workers[0].log_file
    assert log is not None and "Traceback" not in log.read_text(), log.read_text()


async def _generation_is(world: World, namespace: str, generation: int) -> bool:
    return world.generation(namespace) == generation


# ---- 3. an unreachable endpoint is blocked until approved or cancelled -----------------------------


async def test_unreachable_endpoint_is_blocked_then_approve_lets_it_through(world: World) -> None:
    await world.start_worker(**SHORT_PROBE)
    await world.registry_ready()
    before = snapshot(world)
    new = f"{world.subnet}.22"
    async with Node(new) as node:
        wf_id = await update(world, "--validator", "bob", "--endpoint", new)
        progress = await wait_phase(world, wf_id, Phase.BLOCKED)
        assert "unreachable" in (progress.reason or "") and "approve" in (progress.reason or "")
        details = await current_details(world, wf_id)
        assert "blocked" in details and "unreachable" in details
        assert snapshot(world) == before

        # The node answers now (it came up after the budget); the operator lets the change through.
        await node.up()
        await peersync_ok(world, "approve", wf_id)
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE
    assert all(c.changed and c.restarted and not c.kept_unreachable for c in result.consumers)
    assert_moved(world, before, new)


async def test_unreachable_endpoint_is_blocked_then_cancel_ends_it_without_writes(world: World) -> None:
    await world.start_worker(**SHORT_PROBE)
    await world.registry_ready()
    before = snapshot(world)
    wf_id = await update(world, "--validator", "bob", "--endpoint", f"{world.subnet}.22")
    await wait_phase(world, wf_id, Phase.BLOCKED)
    assert "blocked" in await current_details(world, wf_id)

    await peersync_ok(world, "cancel", wf_id, "--reason", "typo in the address")
    await assert_operator_cancelled(world, wf_id)
    assert "typo in the address" in (await world.progress(wf_id)).reason
    assert snapshot(world) == before
    assert (await world.registry_row("bob")).override is None


async def test_approve_forces_a_still_unreachable_endpoint_through(world: World) -> None:
    await world.start_worker(**SHORT_PROBE)
    await world.registry_ready()
    new = f"{world.subnet}.22"
    wf_id = await update(world, "--validator", "bob", "--endpoint", new)
    await wait_phase(world, wf_id, Phase.BLOCKED)
    await peersync_ok(world, "approve", wf_id)
    result = await world.finished(
        wf_id, EndpointChangeResult, timeout=60
    )  # two consumers in turn, each restarted and caught up
    assert result.phase == Phase.DONE
    assert all(f"@{new}:" in world.configmap_text(ns) for ns in AFFECTED)
    assert not any(c.kept_unreachable for c in result.consumers)


# ---- 4. PEERSYNC_REQUIRE_APPROVAL -----------------------------------------------------------------


async def test_require_approval_holds_every_restart_until_approved(world: World) -> None:
    await world.start_worker(PEERSYNC_REQUIRE_APPROVAL="true")
    await world.registry_ready()
    before = snapshot(world)
    new = f"{world.subnet}.22"
    async with Node(new) as node:
        await node.up()
        wf_id = await awaiting_approval(world, "--validator", "bob", "--endpoint", new)
        progress = await world.progress(wf_id)
        assert progress.awaiting_approval
        assert "awaiting-approval" in await current_details(world, wf_id)
        assert snapshot(world) == before  # nothing written, nothing restarted

        await peersync_ok(world, "approve", wf_id)
        result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE
    assert not (await world.progress(wf_id)).awaiting_approval
    assert all(c.restarted for c in result.consumers)
    assert_moved(world, before, new)  # exactly one rollout per affected consumer


# ---- 7. the same change twice is one workflow -----------------------------------------------------


async def test_the_same_change_twice_is_one_workflow(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    new = f"{world.subnet}.22"
    bob = world.operator("bob")
    stall = {
        "type": "stall",
        "resource": "deployments",
        "namespace": "alice-consumer-1",
        "name": "consumer-1",
    }
    await world.kube_fault(stall)  # keep the first run busy while the change is asked for again

    height = await world.edit_validator("bob", f"p2p={new}")
    wf_id = endpoint_change_id("alice", bob, height)
    await wait_phase(world, wf_id, Phase.SYNCING)
    first_run = (await world.handle(wf_id).describe()).run_id

    # The registry's start path again (as a retried `start_endpoint_changes` activity would), while it runs ...
    settings = load_settings(**_settings(world))
    calls = TemporalCalls(settings.activity_config(), world.client)
    change = StartChangesInput(
        changes=[ChangeEvent(operator_address=bob, moniker="bob", endpoint=new, height=height)]
    )
    await ActivityEnvironment().run(calls.start_endpoint_changes, change)
    world.kube().clear_faults()
    result = await world.finished(wf_id, EndpointChangeResult)
    assert result.phase == Phase.DONE
    # ... and after it closed: refused as a duplicate, not run again.
    assert await ActivityEnvironment().run(calls.start_endpoint_changes, change) == []

    # bob publishes the same endpoint again (new tx, new height, other details text): the registry takes
    # the new record, but nothing moved, so no second change starts.
    again = await world.edit_validator("bob", f"p2p={new} moniker-note=same-node")
    await world.registry_sees("bob", again)
    await eventually(lambda: quiet(world), what="the registry to finish acting on its refresh")

    runs = await endpoint_change_runs(world)
    assert runs == [(wf_id, first_run)], runs


def _settings(world: World) -> dict[str, str]:
    env = world.env()
    return {
        "temporal_address": env["TEMPORAL_ADDRESS"],
        "cluster_id": env["PEERSYNC_CLUSTER_ID"],
        "kubeconfig": env["KUBECONFIG"],
    }
