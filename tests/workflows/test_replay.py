"""Replay: today's workflow code must reproduce the commands of histories that real runs recorded, or a
worker upgrade would wedge every workflow in flight (a NondeterminismError on its next task).

Two sources of histories:
- live: one devnet run that goes through the main paths (a change with a dead rollout on one consumer, an
  operator override pinned and cleared, registry refreshes and the change the clear starts, rollout slots,
  a reconcile repair, a live-strategy sync),
  replayed right after, so a test run always checks the code against itself;
- committed: tests/workflows/histories/*.json, recorded the same way from an earlier version of the code, so
  a change to workflow code that would break the workflows already running is caught. If that test fails,
  either keep the old behaviour for old histories (`workflow.patched(...)`), or, when no deployed workflow
  can still be running it, re-record deliberately:

      PEERSYNC_RECORD_HISTORIES=tests/workflows/histories .venv/bin/pytest tests/workflows/test_replay.py -k live
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from core.contracts import EndpointChangeRequest, EndpointChangeResult, Phase, SyncResult
from core.ids import endpoint_change_id, registry_id
from devnet.testbed import World, default_world, eventually, random_subnet
from tests.e2e.control_kit import Node
from workers.worker import WORKFLOWS
from workflows.activity_contracts import OverrideInput
from workflows.reconcile_contracts import ReconcileInput, ReconcileReport
from workflows.registry import RegistryWorkflow

HISTORIES = Path(__file__).parent / "histories"
C1, C2, C3 = "alice-consumer-1", "alice-consumer-2", "alice-consumer-3"


def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)


def committed() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data["workflow_id"], data["history"])


@pytest.mark.parametrize("path", committed(), ids=lambda p: p.stem)
async def test_committed_history_replays(path: Path) -> None:
    await replayer().replay_workflow(load(path))


def test_the_committed_histories_cover_every_workflow_type() -> None:
    types = {json.loads(p.read_text())["workflow_type"] for p in committed()}
    assert types == {w.__name__ for w in WORKFLOWS}, "record every workflow type (see _record, module doc)"


@workflow.defn(name="EndpointChangeWorkflow", sandboxed=False)
class ChangedEndpointChange:
    """A code change that is not replay-safe: it starts with a timer where the real one upserts search
    attributes and runs its first step."""

    @workflow.run
    async def run(self, request: EndpointChangeRequest) -> None:
        await workflow.sleep(1)


async def test_a_changed_workflow_is_caught() -> None:
    """The guard works: replaying a recorded history against changed code fails with a nondeterminism error."""
    path = HISTORIES / "endpoint_change_override.json"
    result = await Replayer(
        workflows=[ChangedEndpointChange], data_converter=pydantic_data_converter
    ).replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondeterminism" in str(result.replay_failure).lower(), result.replay_failure


# ---- live ------------------------------------------------------------------------------------------------


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with World(tmp_path, default_world(random_subnet())) as w:
        yield w


async def test_live_histories_replay(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    sub = world.subnet

    # 1. bob moves while consumer-1's rollout can only die: the change ends failed for that consumer.
    world.patch_workload_spec(C1, {"progressDeadlineSeconds": 1})
    await world.kube_fault(
        {"type": "stall", "resource": "deployments", "namespace": C1, "name": "consumer-1"}
    )
    height = await world.edit_validator("bob", f"p2p={sub}.22")
    await world.nudge_registry()
    failed = endpoint_change_id("alice", world.operator("bob"), height)
    assert (await world.finished(failed, EndpointChangeResult, timeout=45)).phase == Phase.FAILED
    world.kube().clear_faults()
    # Back to the default deadline: a 1 s one also kills the next, healthy rollouts (a pod terminates first).
    world.patch_workload_spec(C1, {"progressDeadlineSeconds": 600})

    # 2. An operator pins bob elsewhere, then clears the pin: the registry starts the change back.
    async with Node(f"{sub}.30", ("consumer-1", "consumer-2")) as node:
        await node.up()
        pinned = "endpoint-change-alice-replay-pin"
        await world.client.start_workflow(
            "EndpointChangeWorkflow",
            EndpointChangeRequest(validator="bob", endpoint=f"{sub}.30", override=True),
            id=pinned,
            task_queue="peersync-alice",
        )
        done = await world.finished(pinned, EndpointChangeResult)
        assert done.phase == Phase.DONE, done
    await world.handle(registry_id("alice")).execute_update(
        RegistryWorkflow.set_override, OverrideInput(operator_address="bob", endpoint=None)
    )

    async def cleared() -> str | None:
        runs = world.client.list_workflows("WorkflowType = 'EndpointChangeWorkflow'")
        found = [w.id async for w in runs if "override-cleared" in w.id]
        return found[0] if found else None

    back = await eventually(cleared, what="the change the clear starts")
    assert (await world.finished(back, EndpointChangeResult)).phase == Phase.DONE

    # 3. A reconcile that finds consumer-3's ConfigMap edited by hand and repairs it.
    cm = world.kube().get("ConfigMap", C3, "consumer-3-config")
    cm["data"]["persistent_peers"] = ""
    world.kube().apply(cm)
    report = await world.client.execute_workflow(
        "ReconcileWorkflow", ReconcileInput(), id="reconcile-alice-replay", task_queue="peersync-alice",
        result_type=ReconcileReport,
    )  # fmt: skip
    assert [r.namespace for r in report.repaired] == [C3]

    # 4. consumer-2 switches to the live strategy while its pods run an older set: dial_peers, no restart.
    ns = world.kube().get("Namespace", "", C2)
    ns["metadata"]["annotations"]["peersync.io/strategy"] = "live"
    world.kube().apply(ns)
    cm = world.kube().get("ConfigMap", C2, "consumer-2-config")
    cm["metadata"]["annotations"]["peersync.io/rolled-hash"] = "0" * 16
    world.kube().apply(cm)
    code, out, err = await world.peersync("sync", "--consumer", C2, "--json")
    assert code == 0, err
    live = SyncResult.model_validate_json(out)
    assert live.live and not live.restarted, live

    histories = [h async for h in world.client.list_workflows().map_histories()]
    types = {h.workflow_id.split("-")[0] for h in histories}
    assert {"endpoint", "consumer", "registry", "rollout"} <= types, types
    results = await replayer().replay_workflows(_iterate(histories), raise_on_replay_failure=False)
    failures = {wf_id: str(err) for wf_id, err in results.replay_failures.items()}
    assert failures == {}

    if target := os.environ.get("PEERSYNC_RECORD_HISTORIES"):
        _record(histories, Path(target))


async def _iterate(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def _record(histories: list[WorkflowHistory], target: Path) -> None:
    """One file per workflow type and outcome; ids and addresses are whatever this run used."""
    target.mkdir(parents=True, exist_ok=True)
    names = {
        "endpoint-change-alice-replay-pin": "endpoint_change_override",
        f"consumer-sync-alice-{C1}": "consumer_sync_failed_then_done",
        f"consumer-sync-alice-{C2}": "consumer_sync_live",
        registry_id("alice"): "registry",
        "rollout-slots-alice": "rollout_slots",
        "reconcile-alice-replay": "reconcile_repair",
    }
    for history in histories:
        wf_id = history.workflow_id
        name = names.get(wf_id)
        if name is None and wf_id.startswith("endpoint-change-") and "override-cleared" not in wf_id:
            name = "endpoint_change_failed_rollout"
        if name is None:
            continue
        started = history.events[0].workflow_execution_started_event_attributes
        payload = {
            "workflow_id": wf_id,
            "workflow_type": started.workflow_type.name,
            "history": history.to_json_dict(),
        }
        (target / f"{name}.json").write_text(json.dumps(payload, separators=(",", ":")) + "\n")
