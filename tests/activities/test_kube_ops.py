"""The cluster operations against the kube emulator through the official client: compare-then-write,
content-addressed restarts, refusals, the rollout wait, and hands off namespaces of other clusters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from activities.kube_ops import Kube, NotManagedError, RolloutFailedError, WorkloadRefusedError, api_client
from core.peers import parse_peer, peer_set_hash
from devnet.kube.server import KubeEmulator
from devnet.loop_thread import serve_in_thread
from devnet.scenario import default_scenario
from devnet.world import seed_cluster

C1, C2, C3 = "alice-consumer-1", "alice-consumer-2", "alice-consumer-3"
NEW_PEER = "0123456789abcdef0123456789abcdef01234567@203.0.113.9:28746"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeEmulator, Kube]]:
    emulator = KubeEmulator(step_seconds=0)  # the tests step the controllers themselves
    with serve_in_thread(emulator):
        scenario = default_scenario()
        seed_cluster(emulator, scenario, scenario.clusters[0])
        emulator.settle()
        kube = Kube(api_client(emulator.write_kubeconfig(tmp_path / "kubeconfig")), "alice")
        yield emulator, kube
        kube.api.close()


def workload(emulator: KubeEmulator, namespace: str) -> dict[str, Any]:
    kind = "StatefulSet" if namespace == C2 else "Deployment"
    name = namespace.removeprefix("alice-")
    obj = emulator.get(kind, namespace, name)
    assert obj is not None
    return obj


def test_seeded_peers_read_back_and_the_pods_run_them(cluster: tuple[KubeEmulator, Kube]) -> None:
    _, kube = cluster
    for ns, count in ((C1, 3), (C2, 2), (C3, 1)):
        applied = kube.read_applied(ns)
        assert len(applied.peers) == count and not applied.problems
        assert applied.workload_hash == applied.peers_hash == applied.configmap_hash


def test_writing_the_same_peers_writes_nothing(cluster: tuple[KubeEmulator, Kube]) -> None:
    emulator, kube = cluster
    rv = emulator.resource_version
    applied = kube.read_applied(C1)
    out = kube.write_peers(C1, applied.peers)
    assert not out.written and emulator.resource_version == rv


def test_a_new_peer_list_is_written_once_and_only_the_peers_line_changes(
    cluster: tuple[KubeEmulator, Kube],
) -> None:
    emulator, kube = cluster
    before_cm = emulator.get("ConfigMap", C1, "consumer-1-config")
    assert before_cm is not None
    peers = [*kube.read_applied(C1).peers[1:], NEW_PEER]
    out = kube.write_peers(C1, peers)
    assert out.written
    after = kube.read_applied(C1)
    assert sorted(after.peers) == sorted(peers) and after.configmap_hash == out.peers_hash
    old_lines = before_cm["data"]["config.toml"].splitlines()
    new_lines = emulator.get("ConfigMap", C1, "consumer-1-config")["data"]["config.toml"].splitlines()  # type: ignore[index]
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("persistent_peers = ")
    assert not kube.write_peers(C1, peers).written


def test_a_conflict_storm_is_retried_until_the_write_lands(cluster: tuple[KubeEmulator, Kube]) -> None:
    emulator, kube = cluster
    emulator.inject_fault({"type": "conflict", "count": 3, "resource": "configmaps", "namespace": C3})
    out = kube.write_peers(C3, [NEW_PEER])
    assert out.written and kube.read_applied(C3).peers == [NEW_PEER]


def test_off_grammar_peers_are_refused_before_anything_is_written(cluster: tuple[KubeEmulator, Kube]) -> None:
    emulator, kube = cluster
    rv = emulator.resource_version
    with pytest.raises(ValueError):
        kube.write_peers(C3, ['0123456789abcdef0123456789abcdef01234567@1.2.3.4:1"\n[rpc]'])
    assert emulator.resource_version == rv


def test_restart_is_content_addressed(cluster: tuple[KubeEmulator, Kube]) -> None:
    emulator, kube = cluster
    current = kube.read_applied(C1).peers_hash
    gen = workload(emulator, C1)["metadata"]["generation"]
    assert not kube.restart(C1, current, "2026-11-25T00:00:00Z").restarted
    assert workload(emulator, C1)["metadata"]["generation"] == gen
    out = kube.restart(C1, "feedfacefeedface", "2026-11-25T00:00:00Z")
    assert out.restarted and out.generation == gen + 1
    again = kube.restart(C1, "feedfacefeedface", "2026-11-25T00:00:01Z")
    assert not again.restarted and workload(emulator, C1)["metadata"]["generation"] == gen + 1


def test_rollout_wait_follows_kubectl_and_fails_on_a_dead_rollout(cluster: tuple[KubeEmulator, Kube]) -> None:
    emulator, kube = cluster
    kube.restart(C2, "feedfacefeedface", "2026-11-25T00:00:00Z")
    assert not kube.rollout_verdict(C2).done
    emulator.settle()
    assert kube.wait_rollout(C2, 5, lambda _v: None).done

    obj = workload(emulator, C1)
    obj["spec"]["progressDeadlineSeconds"] = 1
    emulator.apply(obj)
    emulator.inject_fault({"type": "stall", "resource": "deployments", "namespace": C1, "name": "consumer-1"})
    kube.restart(C1, "feedfacefeedface", "2026-11-25T00:00:00Z")
    emulator.tick()
    emulator.advance_clock(5)
    emulator.settle()
    with pytest.raises(RolloutFailedError, match="progress deadline"):
        kube.wait_rollout(C1, 5, lambda _v: None)


@pytest.mark.parametrize(
    ("namespace", "change"),
    [
        (C1, {"spec": {"paused": True}}),
        (C2, {"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    ],
)
def test_workloads_that_cannot_roll_are_refused(
    cluster: tuple[KubeEmulator, Kube], namespace: str, change: dict[str, Any]
) -> None:
    emulator, kube = cluster
    obj = workload(emulator, namespace)
    obj["spec"].update(change["spec"])
    emulator.apply(obj)
    gen = workload(emulator, namespace)["metadata"]["generation"]
    with pytest.raises(WorkloadRefusedError):
        kube.restart(namespace, "feedfacefeedface", "2026-11-25T00:00:00Z")
    assert workload(emulator, namespace)["metadata"]["generation"] == gen


def test_a_missing_workload_is_refused(cluster: tuple[KubeEmulator, Kube]) -> None:
    emulator, kube = cluster
    emulator.delete("Deployment", C3, "consumer-3")
    with pytest.raises(WorkloadRefusedError, match="not found"):
        kube.restart(C3, "feedfacefeedface", "2026-11-25T00:00:00Z")


def test_namespaces_of_other_clusters_are_never_touched(cluster: tuple[KubeEmulator, Kube]) -> None:
    emulator, kube = cluster
    ns = emulator.get("Namespace", "", C3)
    assert ns is not None
    ns["metadata"]["labels"]["peersync.io/cluster"] = "carol"
    emulator.apply(ns)
    rv = emulator.resource_version
    for op in (lambda: kube.read_applied(C3), lambda: kube.write_peers(C3, [NEW_PEER])):
        with pytest.raises(NotManagedError, match=r"peersync\.io/cluster=alice"):
            op()
    with pytest.raises(NotManagedError, match="does not exist"):
        kube.read_applied("nowhere")
    assert emulator.resource_version == rv
    managed, _ = kube.managed_namespaces()
    assert sorted(n.name for n in managed) == [C1, C2]


# ---- the operator's entries are theirs (DESIGN invariant 14) --------------------------------------------

SENTRY = "f00dbabef00dbabef00dbabef00dbabef00dbabe@sentry-0.validator.svc:26656"
PRIVATE = "tcp://DEADBEEFDEADBEEFDEADBEEFDEADBEEFDEADBEEF@10.0.0.7:26656"
OPERATOR = [SENTRY, PRIVATE, "not a peer"]
# Where each seeded format opens its list: the hand edit below puts the operator's entries first.
OPENINGS = {C1: ('config.toml', 'persistent_peers = "'), C2: ("init.sh", 'persistent_peers="'),
            C3: ("persistent_peers", "")}  # fmt: skip


def hand_edit(kube: Kube, namespace: str) -> None:
    """What an operator does with kubectl edit: add a sentry, a private peer and a typo, before peersync's."""
    key, opening = OPENINGS[namespace]
    cm = kube.core.read_namespaced_config_map(namespace.removeprefix("alice-") + "-config", namespace)
    text = cm.data[key]
    at = text.index(opening) + len(opening) if opening else 0
    cm.data[key] = f"{text[:at]}{','.join(OPERATOR)},{text[at:]}"
    kube.core.replace_namespaced_config_map(cm.metadata.name, namespace, cm)


@pytest.mark.parametrize("namespace", [C1, C2, C3])
def test_the_operators_entries_are_kept_and_never_restart_anything(
    cluster: tuple[KubeEmulator, Kube], namespace: str
) -> None:
    emulator, kube = cluster
    before = kube.read_applied(namespace)
    hand_edit(kube, namespace)
    # A sentry added by hand is not peersync's: its entries, their hash and the pods' hash do not move.
    applied = kube.read_applied(namespace, before.peers)
    assert applied.peers == before.peers and applied.kept == OPERATOR
    assert applied.peers_hash == before.peers_hash == applied.workload_hash  # no restart for it
    assert applied.problems == [] and len(applied.unreadable) == 1  # reported, not in the way
    # One of peersync's validators moves: only its entry changes, the operator's stay first, verbatim.
    node_id = before.peers[0].split("@")[0]
    moved = [*before.peers[1:], f"{node_id}@203.0.113.9:28746"]
    out = kube.write_peers(namespace, moved)
    assert out.written
    after = kube.read_applied(namespace, moved)
    assert sorted(after.peers) == sorted(moved) and after.kept == OPERATOR
    assert after.configmap_hash == out.peers_hash == peer_set_hash(moved)
    assert set(out.all_peers) == {SENTRY, parse_peer(PRIVATE).render(), *moved}  # what a live dial hands on
    rv = emulator.resource_version
    assert not kube.write_peers(namespace, moved).written and emulator.resource_version == rv  # idempotent


def test_a_validator_peersync_wrote_is_removed_when_it_leaves_and_an_unknown_one_is_not(
    cluster: tuple[KubeEmulator, Kube],
) -> None:
    _, kube = cluster
    seeded = kube.read_applied(C1).peers  # written by peersync (its hash annotation says so)
    kube.write_peers(C1, seeded)  # recorded as peersync's
    kube.write_peers(C1, seeded[1:])  # the first validator opted out: its entry goes
    assert seeded[0] not in kube.read_applied(C1).all_peers

    seeded = kube.read_applied(C3).peers
    hand_edit(kube, C3)  # hand edited: no longer recognisably peersync's alone, and nothing recorded
    kube.write_peers(C3, [NEW_PEER])  # so what it does not want now may be the operator's: all stays
    assert kube.read_applied(C3, [NEW_PEER]).kept == [*OPERATOR, *seeded]
    kube.write_peers(C3, [])  # but from now on NEW_PEER is recorded as peersync's
    assert kube.read_applied(C3).all_peers == [SENTRY, parse_peer(PRIVATE).render(), *seeded]
