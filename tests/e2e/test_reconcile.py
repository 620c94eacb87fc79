"""Reconciliation repairs drift no event announces, and leaves a clean cluster alone; its schedule."""

from __future__ import annotations

import json

import pytest

from devnet.testbed import World, eventually
from workflows.reconcile_contracts import ReconcileReport

C1, C2, C3 = "alice-consumer-1", "alice-consumer-2", "alice-consumer-3"

pytestmark = pytest.mark.both_testbeds


async def reconcile(world: World, *args: str) -> ReconcileReport:
    code, out, err = await world.peersync("reconcile", "--json", *args)
    report = ReconcileReport.model_validate_json(out)
    # A dry run exits 1 when it finds drift, as `kubectl diff` (tests/e2e/test_drift_rows.py).
    assert code == (1 if report.dry_run and report.drifted else 0), (out, err)
    return report


async def test_a_clean_cluster_is_reported_clean_and_nothing_is_written(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    rv = world.kube().resource_version
    report = await reconcile(world)
    assert sorted(r.namespace for r in report.clean) == [C1, C2, C3]
    assert not (report.drifted or report.repaired or report.failed or report.skipped)
    assert world.kube().resource_version == rv  # read, never written


async def test_a_hand_edited_configmap_is_found_then_repaired_without_a_restart(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    good = world.drop_first_peer(C1)
    generation = world.generation(C1)

    dry = await reconcile(world, "--dry-run")
    assert [r.namespace for r in dry.drifted] == [C1] and "missing" in (dry.drifted[0].reason or "")
    assert not dry.repaired and world.configmap_text(C1) != good

    report = await reconcile(world)
    assert [r.namespace for r in report.repaired] == [C1]
    assert world.configmap_text(C1) == good
    # The pods never ran the edited list: restoring the ConfigMap needs no restart.
    assert world.generation(C1) == generation
    assert sorted(r.namespace for r in report.clean) == [C2, C3]


async def test_a_half_finished_rollout_is_drift(world: World) -> None:
    # consumer-1: consumer-3's RollingUpdate Deployment is refused a restart (tests/e2e/test_signing_safety.py).
    await world.start_worker()
    await world.registry_ready()
    world.forget_rollout(C1)  # a run that wrote the ConfigMap and died before its rollout
    generation = world.generation(C1)
    report = await reconcile(world)
    assert [r.namespace for r in report.repaired] == [C1], report
    assert "not rolled" in (report.drifted[0].reason or "")
    assert world.generation(C1) == generation + 1  # rolled onto the right peer set, once
    after = await reconcile(world, "--dry-run")
    assert sorted(r.namespace for r in after.clean) == [C1, C2, C3]  # the rollout is recorded


@pytest.mark.emulated_only(reason="Temporal's schedule alone: no chain or cluster request to compare")
async def test_schedule_apply_twice_is_one_schedule_with_the_new_interval(world: World) -> None:
    await world.start_worker("alice", schedule=True, PEERSYNC_RECONCILE_EVERY="5m")

    async def described() -> dict[str, object] | None:
        code, out, _ = await world.peersync("schedule", "describe", "--json")
        return json.loads(out) if code == 0 else None

    first = await eventually(described, what="the worker to apply the schedule")
    assert first["every"] == ["0:05:00"] and first["overlap"] == "SKIP"
    for _ in range(2):
        code, _, err = await world.peersync("schedule", "apply", PEERSYNC_RECONCILE_EVERY="2m")
        assert code == 0, err
    schedules = [s async for s in await world.client.list_schedules()]
    assert [s.id for s in schedules] == ["reconcile-alice"]
    assert (await described())["every"] == ["0:02:00"]
    code, _, _ = await world.peersync("schedule", "pause")
    assert code == 0 and (await described())["paused"] is True
    code, _, _ = await world.peersync("schedule", "apply")  # an apply keeps the operator's pause
    assert (await described())["paused"] is True


def table_rows(out: str) -> list[tuple[str, str, str]]:
    """The (namespace, state, why) rows of `peersync reconcile`'s table (rendered wide enough for one line
    per row)."""
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 3 and cells[0].startswith("alice-"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


async def reconcile_table(world: World, **env: str) -> list[tuple[str, str, str]]:
    code, out, err = await world.peersync("reconcile", COLUMNS="250", **env)
    assert code == 0, err
    return table_rows(out)


async def test_the_table_shows_each_namespace_once_in_its_final_state(world: World) -> None:
    """A repaired namespace was listed twice (drifted, then repaired)."""
    await world.start_worker()
    await world.registry_ready()
    good = world.drop_first_peer(C1)

    rows = await reconcile_table(world)
    assert sorted(r[0] for r in rows) == [C1, C2, C3], rows
    assert {r[0]: r[1] for r in rows} == {C1: "repaired", C2: "clean", C3: "clean"}, rows
    assert "missing" in rows[0][2] and rows[0][0] == C1, rows
    assert world.configmap_text(C1) == good


async def test_a_repair_whose_restart_awaits_approval_is_not_shown_repaired(world: World) -> None:
    """Under PEERSYNC_REQUIRE_APPROVAL a repair that needs a restart writes the ConfigMap and restarts
    nothing: the table said `repaired ... -> restart needs approval`; it now says what is awaited."""
    await world.start_worker(PEERSYNC_REQUIRE_APPROVAL="true")
    await world.registry_ready()
    # consumer-1: a workload peersync may restart (consumer-3's surge Deployment is refused outright).
    world.forget_rollout(C1)  # a rollout that never happened: the pods run an older peer set
    generation = world.generation(C1)

    rows = await reconcile_table(world, PEERSYNC_REQUIRE_APPROVAL="true")
    assert sorted(r[0] for r in rows) == [C1, C2, C3], rows  # each namespace once
    [(_, state, why)] = [r for r in rows if r[0] == C1]
    assert state == "awaiting approval", rows
    assert "not rolled" in why and "peersync sync --consumer consumer-1 --approve" in why, why
    assert "repaired" not in {r[1] for r in rows}, rows
    assert world.generation(C1) == generation  # nothing restarted

    # The report says so too: its own state and list, never `repaired` (the pods still run old peers).
    report = await reconcile(world)
    assert [(r.namespace, r.state) for r in report.awaiting_approval] == [(C1, "awaiting-approval")], report
    assert not report.repaired and not report.failed, report
    assert world.generation(C1) == generation


async def test_a_peer_whose_new_address_does_not_answer_is_kept_and_the_drift_reported_not_repaired(
    world: World,
) -> None:
    """bob moves on the chain to a host where nothing answers yet: a repair keeps bob's old address (a
    peer list must not lose a live peer for a dead one) and says the drift is still there."""
    await world.start_worker()
    await world.registry_ready()
    dead = f"{world.subnet}.23"
    await world.edit_validator("bob", f"p2p={dead}", reachable=False)  # bob's node is not up there yet
    await world.nudge_registry()

    async def learnt() -> bool:
        return (await world.registry_row("bob")).endpoint == dead

    await eventually(learnt, what="the registry to learn bob's new endpoint")
    code, out, _err = await world.peersync("reconcile", "--json")
    assert code == 1, out  # something is left undone
    report = ReconcileReport.model_validate_json(out)
    failed = {row.namespace: row.reason or "" for row in report.failed}
    assert C1 in failed and not report.repaired, report
    assert f"kept the old address of 1 peer(s): {dead}:" in failed[C1], failed[C1]
    assert f"@{dead}:" not in world.configmap_text(C1) and f"@{world.subnet}.2:" in world.configmap_text(C1)
