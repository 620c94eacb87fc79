"""Graceful pod deletion and what each controller does with it: a RollingUpdate Deployment runs the new pod
beside the terminating old one (two signers), Recreate and StatefulSets never do; peersync refuses the first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from activities.kube_ops import Kube, WorkloadRefusedError, api_client
from devnet.kube import manifests
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import deployment_rollout_status, raw_request, tick_until

STAMP = "2026-11-25T18:43:42Z"


def _pods(core: client.CoreV1Api, namespace: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector="app=node").items


def _max_running(emulator: KubeEmulator, kind: str, namespace: str, name: str = "node") -> int:
    return emulator.controllers.max_running().get((kind, namespace, name), 0)


def test_a_deleted_pod_runs_on_for_its_grace_period(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.statefulset("node", namespace, 1, updateStrategy={"type": "OnDelete"}))
    emulator.settle()
    uid = core.read_namespaced_pod("node-0", namespace).metadata.uid
    core.delete_namespaced_pod("node-0", namespace)
    pod = core.read_namespaced_pod("node-0", namespace)
    assert pod.metadata.uid == uid and pod.metadata.deletion_timestamp is not None
    assert pod.metadata.deletion_grace_period_seconds == 30  # spec.terminationGracePeriodSeconds
    assert pod.status.phase == "Running"
    emulator.tick()
    assert core.read_namespaced_pod("node-0", namespace).metadata.uid == uid  # still there: not replaced
    tick_until(emulator, lambda: core.read_namespaced_pod("node-0", namespace).metadata.uid != uid)
    assert _max_running(emulator, "statefulsets", namespace) == 1


def test_grace_period_zero_deletes_at_once(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 1, strategy={"type": "Recreate"}))
    emulator.settle()
    [pod] = _pods(core, namespace)
    core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
    assert pod.metadata.name not in {p.metadata.name for p in _pods(core, namespace)}


@pytest.mark.parametrize(
    "strategy",
    [
        {"type": "RollingUpdate"},  # Kubernetes' default, maxSurge 25% -> 1
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
    ],
    ids=["surge", "max-surge-0"],
)
def test_rolling_update_runs_two_pods_at_once(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str, strategy: Any
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 1, strategy=strategy))
    emulator.settle()
    assert _max_running(emulator, "deployments", namespace) == 1
    apps.patch_namespaced_deployment(
        "node", namespace, manifests.restart_patch(STAMP)
    )  # kubectl rollout restart
    emulator.settle()
    assert _max_running(emulator, "deployments", namespace) == 2
    d = apps.read_namespaced_deployment("node", namespace)
    assert deployment_rollout_status(d)[0] and d.status.replicas == 1


def test_terminating_pods_are_not_counted_in_deployment_status(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    emulator.apply(manifests.deployment("node", namespace, 1, strategy=strategy))
    emulator.settle()
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch(STAMP))
    emulator.tick()
    pods = _pods(core, namespace)
    assert len(pods) == 2 and sum(1 for p in pods if p.metadata.deletion_timestamp) == 1
    status = apps.read_namespaced_deployment("node", namespace).status
    assert (status.replicas, status.updated_replicas) == (1, 1)


def test_recreate_starts_the_new_pod_only_once_the_old_one_is_gone(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 1, strategy={"type": "Recreate"}))
    emulator.settle()
    [old] = _pods(core, namespace)
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch(STAMP))
    emulator.tick()
    [terminating] = _pods(core, namespace)
    assert terminating.metadata.uid == old.metadata.uid and terminating.metadata.deletion_timestamp
    # As the real controller (v1.32.13, tests/real/test_rollout_fidelity.py): no new ReplicaSet yet, so
    # Progressing keeps the previous rollout's reason while replicas is 0 and Available is False.
    status = apps.read_namespaced_deployment("node", namespace).status
    conditions = {c.type: (c.status, c.reason) for c in status.conditions}
    assert (status.replicas or 0, conditions["Available"]) == (0, ("False", "MinimumReplicasUnavailable"))
    assert conditions["Progressing"] == ("True", "NewReplicaSetAvailable")
    emulator.tick()
    assert [p.metadata.uid for p in _pods(core, namespace)] == [old.metadata.uid]  # nothing new yet
    reasons = []
    while not deployment_rollout_status(d := apps.read_namespaced_deployment("node", namespace))[0]:
        reasons.append(next(c.reason for c in d.status.conditions if c.type == "Progressing"))
        emulator.tick()
    assert "NewReplicaSetCreated" in reasons  # written once the old pod is gone
    [new] = _pods(core, namespace)
    assert new.metadata.uid != old.metadata.uid and new.metadata.annotations[manifests.RESTARTED_AT] == STAMP
    assert _max_running(emulator, "deployments", namespace) == 1


def test_the_overlap_is_on_the_admin_api(
    apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 1))
    emulator.settle()
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch(STAMP))
    emulator.settle()
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch(STAMP + "-again"))
    emulator.settle()
    body = raw_request(f"{emulator.url}/devnet/overlap").json()
    # Two restarts, two moments with two signers: the benchmark counts these.
    assert {
        "kind": "deployments",
        "namespace": namespace,
        "name": "node",
        "max_running": 2,
        "overlaps": 2,
    } in body["workloads"]


# ---------------------------------------------------------------- the same restarts made by peersync

SIGNING = "alice-signing"


@pytest.fixture
def kube(emulator: KubeEmulator, tmp_path: Path) -> Iterator[Kube]:
    k = Kube(api_client(emulator.write_kubeconfig(tmp_path / "peersync-kubeconfig")), "alice")
    yield k
    k.api.close()


def _consumer(emulator: KubeEmulator, workload: dict[str, Any], signer: str | None = None) -> None:
    kind = workload["kind"].lower()
    annotations = {"peersync.io/workload": f"{kind}/node", "peersync.io/peers-format": "key"}
    if signer:
        annotations["peersync.io/signer"] = signer
    labels = {"peersync.io/cluster": "alice", "peersync.io/chain-id": "consumer-9"}
    emulator.apply(manifests.namespace(SIGNING, labels, annotations))
    emulator.apply(manifests.configmap("consumer-9-config", SIGNING, {"persistent_peers": ""}))
    emulator.apply(workload)
    emulator.settle()


def test_peersync_refuses_the_rolling_update_and_no_two_pods_run(emulator: KubeEmulator, kube: Kube) -> None:
    _consumer(emulator, manifests.deployment("node", SIGNING, 1))
    generation = emulator.get("Deployment", SIGNING, "node")["metadata"]["generation"]
    reason = kube.restart_refusal(SIGNING)
    assert reason is not None and "deployment/node uses strategy RollingUpdate (maxSurge 25%)" in reason
    with pytest.raises(WorkloadRefusedError, match="two signers with one key"):
        kube.restart(SIGNING, "feedfacefeedface", STAMP)
    emulator.settle()
    assert emulator.get("Deployment", SIGNING, "node")["metadata"]["generation"] == generation
    assert _max_running(emulator, "deployments", SIGNING) == 1


def test_a_remote_signer_lets_peersync_restart_the_rolling_update(emulator: KubeEmulator, kube: Kube) -> None:
    _consumer(emulator, manifests.deployment("node", SIGNING, 1), signer="remote")
    assert kube.restart_refusal(SIGNING) is None
    assert kube.restart(SIGNING, "feedfacefeedface", STAMP).restarted


@pytest.mark.parametrize(
    "workload",
    [
        manifests.deployment("node", SIGNING, 1, strategy={"type": "Recreate"}),
        manifests.statefulset("node", SIGNING, 1),
    ],
    ids=["recreate-deployment", "statefulset"],
)
def test_peersync_restarts_of_safe_workloads_never_run_two_pods(
    emulator: KubeEmulator, kube: Kube, workload: dict[str, Any]
) -> None:
    _consumer(emulator, workload)
    assert kube.restart_refusal(SIGNING) is None
    assert kube.restart(SIGNING, "feedfacefeedface", STAMP).restarted
    tick_until(emulator, lambda: kube.rollout_verdict(SIGNING).done)
    emulator.settle()
    plural = "deployments" if workload["kind"] == "Deployment" else "statefulsets"
    assert _max_running(emulator, plural, SIGNING) == 1
    pods = emulator.list("Pod", SIGNING)
    assert (
        len(pods) == 1 and pods[0]["metadata"]["annotations"]["peersync.io/peers-hash"] == "feedfacefeedface"
    )


def test_a_terminating_statefulset_pod_stays_in_replicas_and_ready_but_not_in_current(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.statefulset("node", namespace, 1))
    emulator.settle()
    apps.patch_namespaced_stateful_set("node", namespace, manifests.restart_patch(STAMP))
    emulator.tick()
    [pod] = _pods(core, namespace)
    assert pod.metadata.deletion_timestamp is not None
    s = apps.read_namespaced_stateful_set("node", namespace).status
    # As the real StatefulSet controller (v1.32.13): the terminating pod counts until it is gone.
    assert (s.replicas, s.ready_replicas, s.current_replicas or 0, s.updated_replicas or 0) == (1, 1, 0, 0)
