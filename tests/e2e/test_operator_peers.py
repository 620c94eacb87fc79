"""The operator's own peers are theirs (DESIGN invariant 14): a sentry and a private peer added by hand stay
byte for byte through an endpoint change and a reconcile, and are never reported stale."""

from __future__ import annotations

import json

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from core.upstream import upstream_node_id
from devnet.testbed import World
from workflows.reconcile_contracts import ReconcileReport

C1, C2 = "alice-consumer-1", "alice-consumer-2"  # config.toml (Deployment), init.sh (StatefulSet)
SENTRY = "f00dbabef00dbabef00dbabef00dbabef00dbabe@sentry-0.alice-validator.svc:26656"
PRIVATE = "tcp://DEADBEEFDEADBEEFDEADBEEFDEADBEEFDEADBEEF@10.0.0.7:26656"  # as the operator typed it
OPENING = {C1: 'persistent_peers = "', C2: 'persistent_peers="'}


def add_by_hand(world: World, namespace: str) -> str:
    """kubectl edit: the operator puts a sentry and a private peer in front of peersync's entries."""
    kube = world.kube()
    notes = kube.get("Namespace", "", namespace)["metadata"]["annotations"]
    cm = kube.get("ConfigMap", namespace, notes["peersync.io/configmap"])
    key = notes["peersync.io/peers-key"]
    cm["data"][key] = cm["data"][key].replace(
        OPENING[namespace], f"{OPENING[namespace]}{SENTRY},{PRIVATE},", 1
    )
    kube.apply(cm)
    return cm["data"][key]


async def reconcile(world: World, *args: str) -> ReconcileReport:
    code, out, err = await world.peersync("reconcile", "--json", *args)
    report = ReconcileReport.model_validate_json(out)
    assert code == (1 if report.dry_run and report.drifted else 0), (
        err
    )  # a dry run with drift: 1, as kubectl diff
    return report


async def test_a_change_of_bob_rewrites_only_bobs_entry_and_keeps_the_operators(world: World) -> None:
    await world.start_worker()
    await world.registry_ready()
    edited = {ns: add_by_hand(world, ns) for ns in (C1, C2)}
    generations = {ns: world.generation(ns) for ns in (C1, C2)}

    # The operator's entries are neither stale nor a reason to restart: reconcile finds nothing to do.
    report = await reconcile(world)
    assert {C1, C2} <= {r.namespace for r in report.clean}, report
    assert not (report.drifted or report.repaired), report
    assert {ns: world.generation(ns) for ns in (C1, C2)} == generations
    assert {ns: world.configmap_text(ns) for ns in (C1, C2)} == edited

    # The plan says what stays.
    new = f"{world.subnet}.22"
    code, out, err = await world.peersync(
        "update", "--validator", "bob", "--endpoint", new, "--dry-run", "--json"
    )
    assert code == 0, err
    plan = {c["namespace"]: c for c in json.loads(out)["consumers"]}
    assert plan[C1]["kept"] == [SENTRY, PRIVATE], plan[C1]

    height = await world.edit_validator("bob", f"p2p={new}")
    change = endpoint_change_id("alice", world.operator("bob"), height)
    result = await world.finished(change, EndpointChangeResult)
    assert result.phase == Phase.DONE, result

    for ns, chain_id in ((C1, "consumer-1"), (C2, "consumer-2")):
        text = world.configmap_text(ns)
        bob = upstream_node_id("bob", chain_id)
        # Only bob's entry moved; the operator's entries are still there, first, exactly as typed.
        assert f"{OPENING[ns]}{SENTRY},{PRIVATE}," in text, text
        old_bob = next(e for e in edited[ns].split(OPENING[ns], 1)[1].split('"')[0].split(",") if bob in e)
        assert old_bob not in text and f"{bob}@{new}:" in text
        unchanged = [e for e in edited[ns].split(OPENING[ns], 1)[1].split('"')[0].split(",") if bob not in e]
        assert all(entry in text for entry in unchanged)
        assert world.generation(ns) == generations[ns] + 1  # one restart each, for bob's move

    after = await reconcile(world, "--dry-run")
    assert {C1, C2} <= {r.namespace for r in after.clean}, after
    assert all(SENTRY in world.configmap_text(ns) and PRIVATE in world.configmap_text(ns) for ns in (C1, C2))
