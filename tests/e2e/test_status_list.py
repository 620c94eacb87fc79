"""`peersync status` as kubectl/Argo users expect it (issue 13 item 6, the `status` parts): the list filtered
by `--phase` and `--validator`, with monikers and old -> new, short ids that stay whole at 80 columns (full
ids in `-o wide`), `-o yaml|json` (and `--json`); a unique id prefix accepted wherever an id is, an
ambiguous or unknown one refused with the candidates."""

from __future__ import annotations

import json

import pytest
import yaml

from core.contracts import Phase
from devnet.testbed import World
from tests.e2e.control_kit import one_line_refusal, peersync_ok, update, wait_phase

shared = pytest.mark.asyncio(loop_scope="module")
NARROW = {"COLUMNS": "80"}


@shared
async def test_the_list_filters_shows_monikers_old_to_new_and_short_ids_any_command_accepts(
    cli_world: World,
) -> None:
    world, sub = cli_world, cli_world.subnet
    # Two changes left probing (nothing answers at either address): the default budget is minutes.
    bobs = await update(world, "--validator", "bob", "--endpoint", f"{sub}.111", "--yes")
    carols = await update(world, "--validator", "carol", "--endpoint", f"{sub}.113", "--yes")
    for change in (bobs, carols):
        await wait_phase(world, change, Phase.PROBING, timeout=60)
    short = {
        bobs: bobs.removeprefix("endpoint-change-alice-"),
        carols: carols.removeprefix("endpoint-change-alice-"),
    }

    table = await peersync_ok(world, "status", **NARROW)
    assert all(len(line) <= 80 for line in table.splitlines()), table
    for change, moniker, old, new in (
        (bobs, "bob", f"{sub}.2", f"{sub}.111"),
        (carols, "carol", f"{sub}.3", f"{sub}.113"),
    ):
        row = next(line for line in table.splitlines() if short[change] in line)  # the id whole, on one line
        assert moniker in row and old in row, (row, table)
        assert new in table
    assert world.operator("bob") not in table  # monikers, not operator addresses

    wide = await peersync_ok(world, "status", "-o", "wide", COLUMNS="250")
    assert bobs in wide and world.operator("bob") in wide, wide

    rows = json.loads(
        await peersync_ok(world, "status", "--validator", "bob", "--phase", "probing", "-o", "json")
    )
    assert [r["workflow_id"] for r in rows] == [bobs], rows
    assert (rows[0]["moniker"], rows[0]["previous"], rows[0]["endpoint"]) == ("bob", f"{sub}.2", f"{sub}.111")
    assert (
        json.loads(await peersync_ok(world, "status", "--json", "--validator", "carol"))[0]["workflow_id"]
        == carols
    )
    as_yaml = yaml.safe_load(
        await peersync_ok(world, "status", "--validator", world.operator("carol"), "-o", "yaml")
    )
    assert [r["workflow_id"] for r in as_yaml] == [carols], as_yaml
    assert (
        json.loads(await peersync_ok(world, "status", "--phase", "done", "--validator", "bob", "--json"))
        == []
    )
    code, _, err = await world.peersync("status", "--validator", "nobody")
    one_line_refusal(code, err, "--validator", "nobody")

    # A unique prefix names a change everywhere an id is taken; the commands act on (and name) the full id.
    shown = await peersync_ok(world, "status", short[bobs], COLUMNS="200")
    assert f"bob → {sub}.111" in shown, shown
    assert await peersync_ok(world, "pause", short[bobs]) == f"pause sent to {bobs}\n"
    assert await peersync_ok(world, "resume", short[bobs]) == f"resume sent to {bobs}\n"
    code, _, err = await world.peersync("approve", short[carols])
    one_line_refusal(code, err, "nothing awaits approval in phase probing")  # resolved, then refused
    code, _, err = await world.peersync("cancel", "manual-")
    one_line_refusal(code, err, "ambiguous", bobs, carols)
    code, _, err = await world.peersync("pause", "no-such-prefix")
    one_line_refusal(code, err, "not found")
    for change in (bobs, carols):
        said = await peersync_ok(world, "cancel", short[change], "--reason", "test over")
        assert "cancelling" in said, said
        await wait_phase(world, change, Phase.CANCELLED, timeout=60)
