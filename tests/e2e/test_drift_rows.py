"""`peersync reconcile --dry-run` as `kubectl diff` (issue 13, item 6): exit 0 without drift, 1 with drift,
2 when the check cannot be made; drift rows name the peers that differ (who, which entry, missing or moved);
`-o wide|yaml|json` for the reconcile and registry tables, `--json` kept as `-o json`. Emulated only: CLI
behaviour, the same on either testbed (the drift itself is covered on both by tests/e2e/test_reconcile.py)."""

from __future__ import annotations

import json

import pytest
import yaml

from core.upstream import upstream_node_id
from devnet.testbed import World
from tests.e2e.control_kit import one_line_refusal
from workflows.reconcile_contracts import ReconcileReport

C1 = "alice-consumer-1"
WIDE = {"COLUMNS": "400"}
pytestmark = pytest.mark.emulated_only(
    reason="CLI output and exit codes; drift on both testbeds: test_reconcile"
)


def owner(peer: str, chain_id: str = "consumer-1") -> str:
    """The moniker whose upstream node id the entry carries (bob, carol or dave on consumer-1)."""
    node_id = peer.partition("@")[0]
    return next(m for m in ("bob", "carol", "dave") if upstream_node_id(m, chain_id) == node_id)


def edit_by_hand(world: World) -> tuple[str, str, str]:
    """Drop consumer-1's first peer and move its second one to another address, as a hand edit would;
    returns (dropped entry, moved entry as it should be, the address it was moved to)."""
    good = world.drop_first_peer(C1)
    peers = good.split('persistent_peers = "')[1].split('"')[0].split(",")
    dropped, moved = peers[0], peers[1]
    elsewhere = f"{world.subnet}.99:{moved.rsplit(':', 1)[1]}"
    kube = world.kube()
    ns = kube.get("Namespace", "", C1)
    cm = kube.get("ConfigMap", C1, ns["metadata"]["annotations"]["peersync.io/configmap"])
    cm["data"]["config.toml"] = cm["data"]["config.toml"].replace(
        moved, f"{moved.partition('@')[0]}@{elsewhere}"
    )
    kube.apply(cm)
    return dropped, moved, elsewhere


async def test_dry_run_exits_like_kubectl_diff_and_names_the_peers_that_differ(world: World) -> None:
    # No worker: the check cannot be made, which is not "drift found" (1) but an error (2), on one line.
    code, out, err = await world.peersync("reconcile", "--dry-run")
    one_line_refusal(code, err, "no worker polls task queue")
    assert code == 2, (code, err)

    await world.start_worker()
    await world.registry_ready()
    code, out, err = await world.peersync("reconcile", "--dry-run", **WIDE)
    assert code == 0, (out, err)  # clean: 0
    dropped, moved, elsewhere = edit_by_hand(world)
    address = dropped.partition("@")[2]

    code, out, err = await world.peersync("reconcile", "--dry-run", **WIDE)
    assert code == 1, (out, err)  # drift found: 1, and the table still printed
    [row] = [line for line in out.splitlines() if C1 in line]
    assert "drifted" in row, out
    assert f"missing {owner(dropped)} {dropped[:8]}..@{address}" in row, row
    assert f"moved {owner(moved)} {moved[:8]}..@{elsewhere} -> {moved.partition('@')[2]}" in row, row
    assert "peer(s)" not in row  # names, not counts

    # -o json and its alias --json: the same report, every peer whole with its validator's address.
    code, out, err = await world.peersync("reconcile", "--dry-run", "-o", "json")
    assert code == 1, err
    report = ReconcileReport.model_validate_json(out)
    [drifted] = report.drifted
    assert [(p.kind, p.moniker, p.want, p.applied) for p in drifted.peers] == sorted(
        [
            ("missing", owner(dropped), dropped, None),
            ("moved", owner(moved), moved, f"{moved.partition('@')[0]}@{elsewhere}"),
        ],
        key=lambda p: str(p[1]),
    )
    assert {p.operator_address for p in drifted.peers} == {
        world.operator(owner(dropped)),
        world.operator(owner(moved)),
    }
    code, alias, err = await world.peersync("reconcile", "--dry-run", "--json")
    assert code == 1 and _rows(json.loads(alias)) == _rows(json.loads(out)), err
    code, as_yaml, err = await world.peersync("reconcile", "--dry-run", "-o", "yaml")
    assert code == 1 and _rows(yaml.safe_load(as_yaml)) == _rows(json.loads(out)), (as_yaml, err)

    # -o wide: the chain and each differing peer whole, with its operator address.
    code, out, err = await world.peersync("reconcile", "--dry-run", "-o", "wide", **WIDE)
    assert code == 1, err
    assert "consumer-1" in out and dropped in out and world.operator(owner(dropped)) in out, out

    # Two formats at once is a mistake of the caller: an error (2 in a dry run), never "drift".
    code, _, err = await world.peersync("reconcile", "--dry-run", "--json", "-o", "yaml")
    one_line_refusal(code, err, "--json and -o yaml")
    assert code == 2

    # The repair exits 0 (nothing failed); afterwards the dry run finds nothing: 0.
    code, out, err = await world.peersync("reconcile", "--json")
    assert code == 0 and [r.namespace for r in ReconcileReport.model_validate_json(out).repaired] == [C1], err
    code, out, err = await world.peersync("reconcile", "--dry-run", "--json")
    assert code == 0 and not ReconcileReport.model_validate_json(out).drifted, (out, err)


def _rows(report: dict[str, list[dict[str, object]]]) -> list[tuple[str, object]]:
    """A report without the consumer refs' ordering noise: (namespace, peers) of each list, sorted."""
    return sorted(
        (str(r["namespace"]), json.dumps(r["peers"]))
        for rows in report.values()
        if isinstance(rows, list)
        for r in rows
    )


async def test_registry_prints_wide_yaml_and_json(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    code, as_json, err = await world.peersync("registry", "--json")
    assert code == 0, err
    for args in (["-o", "json"], ["--json", "-o", "json"]):
        code, out, err = await world.peersync("registry", *args)
        assert code == 0 and json.loads(out) == json.loads(as_json), (args, err)
    code, out, err = await world.peersync("registry", "-o", "yaml")
    assert code == 0 and yaml.safe_load(out) == json.loads(as_json), err

    code, narrow, err = await world.peersync("registry", **WIDE)
    assert code == 0 and "change" not in _header(narrow), narrow
    code, wide, err = await world.peersync("registry", "-o", "wide", **WIDE)
    assert code == 0 and "change" in _header(wide) and "operator address" in _header(wide), wide

    code, _, err = await world.peersync("registry", "-o", "tsv")
    assert code == 2 and "tsv" in err, err  # not a format: typer's usage error
    code, _, err = await world.peersync("registry", "--json", "-o", "wide")
    one_line_refusal(code, err, "--json and -o wide")


def _header(table: str) -> str:
    return next(line for line in table.splitlines() if "moniker" in line)
