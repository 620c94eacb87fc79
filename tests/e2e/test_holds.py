"""Operator control that holds (issue 13 items 1, 2): a cancelled chain move stays cancelled (a visible hold)
until the chain moves again or the operator releases it; a newer change supersedes every older one of the
same validator, and approving an older one is refused, naming the current one."""

from __future__ import annotations

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from devnet.testbed import World, eventually
from tests.e2e.control_kit import one_line_refusal, peersync_ok, update, wait_phase
from workflows.reconcile_contracts import ReconcileReport

C1 = "alice-consumer-1"
SHORT_PROBE = {"PEERSYNC_PROBE_BUDGET": "2s"}  # blocked after 2 s instead of policies.PROBE's 5 minutes


async def reconcile_dry_run(world: World) -> ReconcileReport:
    code, out, err = await world.peersync("reconcile", "--dry-run", "--json")
    assert code in (0, 1), err
    return ReconcileReport.model_validate_json(out)


async def test_a_cancelled_chain_move_holds_until_the_chain_moves_again_or_it_is_released(
    world: World,
) -> None:
    await world.start_worker(**SHORT_PROBE)
    await world.registry_ready()
    sub, bob = world.subnet, world.operator("bob")
    before = f"{sub}.2"
    # A wrong IP: nothing listens there, the change blocks at its probe; the operator cancels it.
    wrong = await world.edit_validator("bob", f"p2p={sub}.101", reachable=False)
    change = endpoint_change_id("alice", bob, wrong)
    await wait_phase(world, change, Phase.BLOCKED)
    said = await peersync_ok(world, "cancel", change, "--reason", "wrong IP")
    assert "the registry will hold the endpoint in effect before this move" in said, said

    async def held() -> bool:
        row = await world.registry_row("bob")
        return row.hold is not None

    await eventually(held, 30, "the registry to hold bob after the cancel")
    row = await world.registry_row("bob")
    assert row.effective == before and row.hold is not None
    assert (row.hold.reason, row.hold.by, row.hold.endpoint) == ("wrong IP", change, before)
    table = await peersync_ok(world, "registry")
    assert "held: wrong" in table and "(held)" in table, table

    # Reconcile keeps the held endpoint: nothing drifts, nothing is written.
    report = await reconcile_dry_run(world)
    assert not report.drifted, report
    assert f"@{before}:" in world.configmap_text(C1)

    # Released: the registry starts the change to the endpoint the chain publishes (still unreachable here).
    out = await peersync_ok(world, "hold", "release", "--validator", "bob")
    assert f"in effect: {sub}.101" in out, out
    assert (await world.registry_row("bob")).hold is None

    # A hold placed by hand, then the chain moves again (a newer edit): the hold ends, the move applies.
    out = await peersync_ok(world, "hold", "--validator", "bob", "--reason", "maintenance")
    assert "held at" in out and "maintenance" in out, out
    fixed = await world.edit_validator("bob", f"p2p={sub}.102")
    result = await world.finished(endpoint_change_id("alice", bob, fixed), EndpointChangeResult)
    assert result.phase == Phase.DONE, result
    row = await world.registry_row("bob")
    assert row.hold is None and row.effective == f"{sub}.102"
    assert f"@{sub}.102:" in world.configmap_text(C1)


async def test_a_newer_override_supersedes_the_older_change_and_approving_it_is_refused(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    sub = world.subnet
    first = await update(world, "--validator", "bob", "--endpoint", f"{sub}.101")  # nothing answers there
    await wait_phase(world, first, Phase.PROBING, Phase.BLOCKED, timeout=30)
    second = await update(world, "--validator", "bob", "--endpoint", f"{sub}.103")  # nothing answers either
    result = await world.finished(first, EndpointChangeResult)
    assert result.phase == Phase.SUPERSEDED, result
    assert (await world.registry_row("bob")).change == second

    code, _, err = await world.peersync("approve", first)
    one_line_refusal(code, err, f"{first} is not the current change of bob", f"{second} is")

    # Clearing the override supersedes the operator's change still in flight: it can never pin .103.
    await wait_phase(world, second, Phase.PROBING, Phase.BLOCKED, timeout=30)
    await peersync_ok(world, "update", "--validator", "bob", "--clear")
    result = await world.finished(second, EndpointChangeResult)
    assert result.phase == Phase.SUPERSEDED, result
    row = await world.registry_row("bob")
    assert row.override is None and row.effective == f"{sub}.2"
    assert f"@{sub}.103:" not in world.configmap_text(C1)
