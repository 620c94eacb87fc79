"""Undo (issue 13 item 7): `peersync undo --validator V` pins again the endpoint in effect before V's last
change, planned and confirmed as an override is; refused, with the reason, when there is nothing to undo."""

from __future__ import annotations

import yaml

from core.contracts import EndpointChangeResult, Phase
from devnet.testbed import World
from tests.e2e.control_kit import Node, one_line_refusal, peersync_ok, snapshot, update

C1 = "alice-consumer-1"


async def test_undo_pins_the_endpoint_before_the_last_change(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    original = f"{world.subnet}.2"  # bob's published endpoint; his nodes still answer there

    # Nothing changed yet: nothing to undo, nothing started; an unknown validator is named.
    code, _, err = await world.peersync("undo", "--validator", "bob", "--yes")
    one_line_refusal(code, err, "nothing to undo")
    code, _, err = await world.peersync("undo", "--validator", "nobody", "--yes")
    one_line_refusal(code, err, "no validator 'nobody' in the registry of cluster alice")

    async with Node(f"{world.subnet}.67") as node:
        await node.up()
        moved = await update(world, "--validator", "bob", "--endpoint", node.host)
        assert (await world.finished(moved, EndpointChangeResult)).phase == Phase.DONE
    row = await world.registry_row("bob")
    assert (row.change, row.previous, row.effective) == (moved, original, node.host)

    # The plan of the undo, and nothing changed by it.
    before = snapshot(world)
    out = await peersync_ok(world, "undo", "--validator", "bob", "--dry-run", COLUMNS="250")
    assert f"-> {original} (dry run: nothing changed)" in out and "peers after" in out, out
    assert snapshot(world) == before
    # -o yaml: the same plan as data, for scripts (kubectl's -o).
    plan = yaml.safe_load(await peersync_ok(world, "undo", "--validator", "bob", "--dry-run", "-o", "yaml"))
    assert plan["endpoint"] == original and {c["namespace"] for c in plan["consumers"]} >= {C1}, plan
    assert snapshot(world) == before

    # No terminal and no --yes: refused as an override is.
    code, _, err = await world.peersync("undo", "--validator", "bob")
    one_line_refusal(code, err, f"undo of {moved} restarts validators' nodes", "--yes")
    assert (await world.registry_row("bob")).change == moved

    out = await peersync_ok(world, "undo", "--validator", "bob", "--yes", "--wait", COLUMNS="250")
    assert "started endpoint-change-alice-manual-" in out, out
    assert f"bob -> {original}: done" in out and "peers before" in out, out  # the result table
    row = await world.registry_row("bob")
    assert row.override == original and row.effective == original, row
    assert f"@{original}:" in world.configmap_text(C1) and f"@{node.host}:" not in world.configmap_text(C1)

    assert row.previous == node.host  # what an undo of the undo would pin again
