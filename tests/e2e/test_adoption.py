"""Adopting consumers peersync never managed: one whose ConfigMap already holds the right peers is taken
over without a restart (its pods were started on that ConfigMap); one with wrong peers is fixed with one."""

from __future__ import annotations

import json

from devnet.testbed import World

C1, C2, C3 = "alice-consumer-1", "alice-consumer-2", "alice-consumer-3"
PEERSYNC_KEYS = ("peersync.io/peers-hash", "peersync.io/rolled-hash")


def forget_peersync(world: World, namespace: str) -> None:
    """What a consumer looks like before peersync: no peersync annotation on its ConfigMap or pod template."""
    kube = world.kube()
    cm = kube.get("ConfigMap", namespace, _configmap(world, namespace))
    assert cm is not None
    for key in PEERSYNC_KEYS:
        cm["metadata"].get("annotations", {}).pop(key, None)
    kube.apply(cm)
    workload = world.workload(namespace)
    workload["spec"]["template"]["metadata"].get("annotations", {}).pop("peersync.io/peers-hash", None)
    kube.apply(workload)
    kube.settle()


def _configmap(world: World, namespace: str) -> str:
    ns = world.kube().get("Namespace", "", namespace)
    assert ns is not None
    return ns["metadata"]["annotations"]["peersync.io/configmap"]


async def reconcile(world: World, *args: str) -> dict[str, list[dict[str, object]]]:
    code, out, err = await world.peersync("reconcile", "--json", *args)
    report: dict[str, list[dict[str, object]]] = json.loads(out)
    assert code == (1 if "--dry-run" in args and report["drifted"] else 0), err  # drift: 1, as kubectl diff
    return report


def namespaces(report: dict[str, list[dict[str, object]]], state: str) -> list[str]:
    return sorted(str(row["namespace"]) for row in report[state])


async def test_a_correct_unmanaged_consumer_is_adopted_without_a_restart(world: World) -> None:
    forget_peersync(world, C1)
    await world.start_worker()
    await world.registry_ready()
    generation, peers = world.generation(C1), world.configmap_text(C1)

    assert namespaces(await reconcile(world, "--dry-run"), "clean") == [C1, C2, C3]
    code, _out, err = await world.peersync("sync", "--consumer", C1)
    assert code == 0, err
    state = await world.consumer_sync(C1)
    result = state.results[state.completed]
    assert not result.restarted and not result.error, result
    assert world.generation(C1) == generation and world.configmap_text(C1) == peers
    cm = world.kube().get("ConfigMap", C1, _configmap(world, C1))
    assert cm is not None and cm["metadata"]["annotations"]["peersync.io/rolled-hash"]  # adopted, recorded


async def test_an_unmanaged_consumer_with_wrong_peers_is_fixed_with_one_restart(world: World) -> None:
    forget_peersync(world, C1)
    good = world.drop_first_peer(C1)  # the pods run a list missing a peer
    generation = world.generation(C1)
    await world.start_worker()
    # A new registry's first refresh runs a drift check (issue 9, no start-up gap): the wrong list is
    # repaired within seconds of the worker's start, not at the next scheduled reconcile.
    await world.registry_ready()  # waits for that first drift check
    assert world.configmap_text(C1) == good
    assert world.generation(C1) == generation + 1
    assert namespaces(await reconcile(world, "--dry-run"), "clean") == [C1, C2, C3]


async def test_a_configmap_peersync_cannot_rewrite_fails_the_sync_at_once(world: World) -> None:
    """init.sh with shell expansion: only a person can fix it, so the sync fails now, naming the cause,
    instead of retrying the write for the policy's 10 minutes."""
    cm = world.kube().get("ConfigMap", C2, _configmap(world, C2))
    assert cm is not None
    text = cm["data"]["init.sh"]
    start = text.index("persistent_peers=")
    end = text.index("\n", start)
    cm["data"]["init.sh"] = text[:start] + 'persistent_peers="$PEERS"' + text[end:]
    world.kube().apply(cm)
    await world.start_worker()
    await world.registry_ready()

    code, out, err = await world.peersync("sync", "--consumer", C2)
    state = await world.consumer_sync(C2)
    result = state.results[state.completed]
    assert result.error and "cannot rewrite the peers" in result.error and "shell expansion" in result.error
    assert not result.restarted
    assert 'persistent_peers="$PEERS"' in world.configmap_text(C2), (code, out, err)


async def test_a_missing_configmap_is_skipped_with_the_apiservers_one_line_reason(world: World) -> None:
    world.kube().delete("ConfigMap", C3, _configmap(world, C3))
    await world.start_worker()
    await world.registry_ready()
    report = await reconcile(world, "--dry-run")
    [row] = report["skipped"]
    assert row["namespace"] == C3
    assert row["reason"] == f'HTTP 404: configmaps "{_configmap(world, C3)}" not found', row
