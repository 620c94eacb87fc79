"""Overrides set straight through Temporal (the UI, `temporal workflow update execute`) bypass the CLI's
checks: the registry refuses one off the endpoint grammar, and one the address policy refuses is never
used (the next endpoint in line is), so nothing hangs and no ConfigMap gets it."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from core.ids import registry_id
from devnet.testbed import World
from workflows.activity_contracts import OverrideInput
from workflows.reconcile_contracts import ReconcileReport


async def test_an_override_off_the_grammar_is_refused_by_the_registry(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    registry = world.handle(registry_id("alice"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await registry.execute_update(
            "set_override", OverrideInput(operator_address=world.operator("bob"), endpoint="10.0.0.5;x")
        )
    assert "contains ';'" in str(refused.value.cause)
    assert (await world.registry_row("bob")).effective == f"{world.subnet}.2"


async def test_an_override_the_policy_refuses_is_skipped_not_retried(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    before = world.configmap_text("alice-consumer-1")
    await world.handle(registry_id("alice")).execute_update(
        "set_override", OverrideInput(operator_address=world.operator("bob"), endpoint="10.0.0.5")
    )
    code, out, err = await world.peersync("reconcile", "--json")
    assert code == 0, err
    report = ReconcileReport.model_validate_json(out)
    assert not report.failed and "alice-consumer-1" in [r.namespace for r in report.clean]
    assert world.configmap_text("alice-consumer-1") == before  # bob stays at his published endpoint
    assert "10.0.0.5" not in before
