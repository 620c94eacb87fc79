"""Generation rules, the status subresource and the simulated Deployment/StatefulSet controllers."""

from __future__ import annotations

import pytest
from kubernetes import client

from devnet.kube import manifests
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import deployment_rollout_status, statefulset_rollout_complete, tick_until

RESTARTED_AT = manifests.RESTARTED_AT


def _trail(apps: client.AppsV1Api, name: str, namespace: str) -> tuple[int, int, int, int, int]:
    s = apps.read_namespaced_deployment_status(name, namespace).status
    d = apps.read_namespaced_deployment(name, namespace)
    return (
        d.metadata.generation,
        s.observed_generation or 0,
        s.updated_replicas or 0,
        s.ready_replicas or 0,
        s.replicas or 0,
    )


def _pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[client.V1Pod]:
    """The active pods: terminating ones (deletionTimestamp set) run on for their grace period."""
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def test_deployment_defaults(apps: client.AppsV1Api, namespace: str) -> None:
    body = manifests.deployment("node", namespace)
    del body["spec"]["replicas"]
    d = apps.create_namespaced_deployment(namespace, body)
    assert d.metadata.generation == 1
    assert d.spec.replicas == 1
    assert d.spec.progress_deadline_seconds == 600
    assert d.spec.revision_history_limit == 10
    assert d.spec.strategy.type == "RollingUpdate"
    assert (d.spec.strategy.rolling_update.max_surge, d.spec.strategy.rolling_update.max_unavailable) == (
        "25%",
        "25%",
    )
    container = d.spec.template.spec.containers[0]
    assert container.image_pull_policy == "IfNotPresent"
    assert d.spec.template.spec.restart_policy == "Always"


def test_statefulset_defaults(apps: client.AppsV1Api, namespace: str) -> None:
    s = apps.create_namespaced_stateful_set(namespace, manifests.statefulset("node", namespace, 2))
    assert s.spec.update_strategy.type == "RollingUpdate"
    assert s.spec.update_strategy.rolling_update.partition == 0
    assert s.spec.pod_management_policy == "OrderedReady"
    assert s.status.replicas == 0  # required by the v37 model, present from creation on


def test_restart_patch_rolls_a_deployment_like_kubectl_sees_it(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 3))
    emulator.settle()
    before = apps.read_namespaced_deployment("node", namespace)
    assert deployment_rollout_status(before)[0]
    assert before.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    old_pods = {p.metadata.name for p in _pods(core, namespace, "app=node")}

    patched = apps.patch_namespaced_deployment(
        "node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z")
    )
    assert patched.metadata.generation == before.metadata.generation + 1
    assert (
        patched.status.observed_generation == before.metadata.generation
    )  # the controller has not looked yet
    assert deployment_rollout_status(patched) == (
        False,
        "Waiting for deployment spec update to be observed...",
    )

    trail = []
    messages = []

    def done() -> bool:
        d = apps.read_namespaced_deployment("node", namespace)
        trail.append(_trail(apps, "node", namespace))
        finished, message = deployment_rollout_status(d)
        messages.append(message)
        return finished

    ticks = tick_until(emulator, done)
    assert ticks == 4
    assert trail == [
        (2, 1, 3, 3, 3),  # not observed yet
        (2, 2, 1, 3, 4),  # surge pod created
        (2, 2, 2, 3, 4),
        (2, 2, 3, 3, 4),
        (2, 2, 3, 3, 3),  # last old pod gone
    ]
    assert "1 out of 3 new replicas have been updated..." in messages
    assert "1 old replicas are pending termination..." in messages

    d = apps.read_namespaced_deployment("node", namespace)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    conditions = {c.type: c for c in d.status.conditions}
    assert (conditions["Progressing"].status, conditions["Progressing"].reason) == (
        "True",
        "NewReplicaSetAvailable",
    )
    assert (conditions["Available"].status, conditions["Available"].reason) == (
        "True",
        "MinimumReplicasAvailable",
    )

    pods = _pods(core, namespace, "app=node")
    assert len(pods) == 3 and not ({p.metadata.name for p in pods} & old_pods)
    for pod in pods:
        assert pod.metadata.annotations[RESTARTED_AT] == "2026-11-25T18:43:42Z"
        assert pod.metadata.labels["pod-template-hash"]
        assert pod.metadata.owner_references[0].kind == "ReplicaSet"
        ready = next(c for c in pod.status.conditions if c.type == "Ready")
        assert ready.status == "True" and pod.status.phase == "Running"


def test_identical_restart_patch_changes_nothing(
    apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 2))
    emulator.settle()
    first = apps.patch_namespaced_deployment(
        "node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z")
    )
    emulator.settle()
    settled = apps.read_namespaced_deployment("node", namespace)
    again = apps.patch_namespaced_deployment(
        "node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z")
    )
    assert again.metadata.generation == first.metadata.generation
    assert again.metadata.resource_version == settled.metadata.resource_version
    assert emulator.tick() == 0  # and the controllers have nothing to do


def test_generation_rules(apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str) -> None:
    emulator.apply(manifests.deployment("node", namespace))
    emulator.apply(manifests.statefulset("sts", namespace))
    emulator.settle()
    d = apps.patch_namespaced_deployment("node", namespace, {"metadata": {"annotations": {"note": "x"}}})
    assert d.metadata.generation == 2  # Deployment: metadata.annotations count
    s = apps.patch_namespaced_stateful_set("sts", namespace, {"metadata": {"annotations": {"note": "x"}}})
    assert s.metadata.generation == 1  # StatefulSet: spec only
    d = apps.patch_namespaced_deployment("node", namespace, {"metadata": {"labels": {"team": "a"}}})
    assert d.metadata.generation == 2
    d = apps.patch_namespaced_deployment("node", namespace, {"spec": {"replicas": 2}})
    assert d.metadata.generation == 3


def test_status_subresource(apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str) -> None:
    emulator.apply(manifests.deployment("node", namespace, 2))
    emulator.settle()
    before = apps.read_namespaced_deployment("node", namespace)

    # A main-resource write cannot change status...
    ignored = apps.patch_namespaced_deployment(
        "node", namespace, {"status": {"readyReplicas": 99}, "metadata": {"labels": {"x": "y"}}}
    )
    assert ignored.status.ready_replicas == 2 and ignored.metadata.labels == {"x": "y"}
    # ...and a status write cannot change anything else, nor bump generation.
    written = apps.patch_namespaced_deployment_status(
        "node", namespace, {"status": {"readyReplicas": 1}, "spec": {"replicas": 7}}
    )
    assert written.status.ready_replicas == 1
    assert written.spec.replicas == 2
    assert written.metadata.generation == before.metadata.generation
    assert int(written.metadata.resource_version) > int(before.metadata.resource_version)


def test_statefulset_rolls_one_pod_per_tick_and_catches_up_current_revision(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.statefulset("node", namespace, 3))
    emulator.settle()
    before = apps.read_namespaced_stateful_set("node", namespace)
    assert statefulset_rollout_complete(before)
    old_uids = {p.metadata.name: p.metadata.uid for p in _pods(core, namespace, "app=node")}
    assert sorted(old_uids) == ["node-0", "node-1", "node-2"]

    apps.patch_namespaced_stateful_set("node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z"))
    trail = []

    def done() -> bool:
        s = apps.read_namespaced_stateful_set("node", namespace)
        st = s.status
        trail.append(
            (
                s.metadata.generation,
                st.observed_generation,
                st.updated_replicas or 0,
                st.ready_replicas or 0,
                st.current_revision == st.update_revision,
            )
        )
        return statefulset_rollout_complete(s)

    tick_until(emulator, done)
    assert trail[0] == (2, 1, 3, 3, True)  # the old status: not observed yet
    updated = [t[2] for t in trail[1:]]
    # One pod at a time: each ordinal is re-created only once its old pod is gone (its grace period).
    assert updated == sorted(updated) and sorted(set(updated)) == [0, 1, 2, 3]
    assert emulator.controllers.max_running()[("statefulsets", namespace, "node")] == 3
    assert min(t[3] for t in trail[1:]) == 2  # readyReplicas dips during the roll
    assert trail[-1] == (2, 2, 3, 3, True)
    assert all(not t[4] for t in trail[1:-1])  # currentRevision only catches up at the end

    s = apps.read_namespaced_stateful_set("node", namespace)
    assert s.status.update_revision.startswith("node-") and s.status.current_replicas == 3
    pods = _pods(core, namespace, "app=node")
    assert {p.metadata.name for p in pods} == set(old_uids)
    for pod in pods:
        assert pod.metadata.uid != old_uids[pod.metadata.name]  # re-created
        assert pod.metadata.labels["controller-revision-hash"] == s.status.update_revision
        assert pod.metadata.annotations[RESTARTED_AT] == "2026-11-25T18:43:42Z"


def test_stalled_deployment_exceeds_its_progress_deadline(
    apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 2, progressDeadlineSeconds=30))
    emulator.settle()
    emulator.inject_fault(
        {"type": "stall", "resource": "deployments", "namespace": namespace, "name": "node"}
    )
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z"))
    emulator.tick()
    emulator.tick()
    d = apps.read_namespaced_deployment("node", namespace)
    assert deployment_rollout_status(d) == (False, "0 out of 2 new replicas have been updated...")

    emulator.advance_clock(31)
    emulator.tick()
    d = apps.read_namespaced_deployment("node", namespace)
    progressing = next(c for c in d.status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    with pytest.raises(RuntimeError, match="exceeded its progress deadline"):
        deployment_rollout_status(d)

    emulator.clear_faults()  # the rollout resumes (Progressing turns True again) and completes
    emulator.tick()
    tick_until(
        emulator, lambda: deployment_rollout_status(apps.read_namespaced_deployment("node", namespace))[0]
    )


def test_never_ready_pod_blocks_the_deployment_until_the_deadline(
    apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 2, progressDeadlineSeconds=60))
    emulator.settle()
    emulator.inject_fault({"type": "never_ready", "namespace": namespace, "name": "node"})
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z"))
    for _ in range(5):
        emulator.tick()
    assert deployment_rollout_status(apps.read_namespaced_deployment("node", namespace))[0] is False
    emulator.advance_clock(61)
    emulator.tick()
    with pytest.raises(RuntimeError):
        deployment_rollout_status(apps.read_namespaced_deployment("node", namespace))


def test_never_ready_pod_blocks_the_statefulset(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.statefulset("node", namespace, 3))
    emulator.settle()
    emulator.inject_fault({"type": "never_ready", "namespace": namespace, "name": "node"})
    apps.patch_namespaced_stateful_set("node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z"))
    for _ in range(10):
        emulator.tick()
    s = apps.read_namespaced_stateful_set("node", namespace)
    assert not statefulset_rollout_complete(s)
    assert (s.status.updated_replicas, s.status.ready_replicas) == (1, 2)
    stuck = core.read_namespaced_pod("node-2", namespace)
    assert next(c for c in stuck.status.conditions if c.type == "Ready").status == "False"

    # Fixing the template does not help an OrderedReady StatefulSet (k/k #67250)...
    apps.patch_namespaced_stateful_set("node", namespace, manifests.restart_patch("2026-11-25T18:50:00Z"))
    for _ in range(10):
        emulator.tick()
    assert not statefulset_rollout_complete(apps.read_namespaced_stateful_set("node", namespace))
    # ...deleting the stuck pod by hand does.
    core.delete_namespaced_pod("node-2", namespace)
    tick_until(
        emulator, lambda: statefulset_rollout_complete(apps.read_namespaced_stateful_set("node", namespace))
    )


def test_named_pod_fault_makes_a_running_pod_unready(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.statefulset("node", namespace, 2))
    emulator.settle()
    fault = emulator.inject_fault({"type": "never_ready", "namespace": namespace, "pod": "node-1"})
    emulator.tick()
    pod = core.read_namespaced_pod("node-1", namespace)
    assert next(c for c in pod.status.conditions if c.type == "Ready").status == "False"
    emulator.remove_fault(fault["id"])
    emulator.tick()
    pod = core.read_namespaced_pod("node-1", namespace)
    assert next(c for c in pod.status.conditions if c.type == "Ready").status == "True"


def test_paused_deployment_does_not_roll(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 2))
    emulator.settle()
    pods = {p.metadata.name for p in _pods(core, namespace, "app=node")}
    apps.patch_namespaced_deployment("node", namespace, {"spec": {"paused": True}})
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z"))
    for _ in range(5):
        emulator.tick()
    d = apps.read_namespaced_deployment("node", namespace)
    assert d.status.observed_generation == d.metadata.generation
    assert {p.metadata.name for p in _pods(core, namespace, "app=node")} == pods
    progressing = next(c for c in d.status.conditions if c.type == "Progressing")
    assert progressing.reason == "DeploymentPaused"
    apps.patch_namespaced_deployment("node", namespace, {"spec": {"paused": False}})
    tick_until(
        emulator, lambda: deployment_rollout_status(apps.read_namespaced_deployment("node", namespace))[0]
    )
    assert not pods & {p.metadata.name for p in _pods(core, namespace, "app=node")}


def test_on_delete_statefulset_never_restarts_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.statefulset("node", namespace, 2, updateStrategy={"type": "OnDelete"}))
    emulator.settle()
    uids = {p.metadata.name: p.metadata.uid for p in _pods(core, namespace, "app=node")}
    apps.patch_namespaced_stateful_set("node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z"))
    for _ in range(10):
        emulator.tick()
    assert {p.metadata.name: p.metadata.uid for p in _pods(core, namespace, "app=node")} == uids
    s = apps.read_namespaced_stateful_set("node", namespace)
    assert s.status.observed_generation == 2 and s.status.updated_replicas is None
    # A pod deleted by hand comes back with the new template.
    core.delete_namespaced_pod("node-1", namespace)
    tick_until(emulator, lambda: core.read_namespaced_pod("node-1", namespace).metadata.uid != uids["node-1"])
    pod = core.read_namespaced_pod("node-1", namespace)
    assert pod.metadata.annotations[RESTARTED_AT] == "2026-11-25T18:43:42Z"


def test_partitioned_statefulset_updates_only_above_the_partition(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(
        manifests.statefulset(
            "node", namespace, 3, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
        )
    )
    emulator.settle()
    apps.patch_namespaced_stateful_set("node", namespace, manifests.restart_patch("2026-11-25T18:43:42Z"))
    emulator.settle()
    s = apps.read_namespaced_stateful_set("node", namespace)
    assert s.status.updated_replicas == 1 and s.status.current_revision != s.status.update_revision
    annotated = {
        p.metadata.name
        for p in _pods(core, namespace, "app=node")
        if RESTARTED_AT in (p.metadata.annotations or {})
    }
    assert annotated == {"node-2"}


def test_scaling_and_deleting_workloads(
    apps: client.AppsV1Api, core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 1))
    emulator.apply(manifests.statefulset("sts", namespace, 1))
    emulator.settle()
    apps.patch_namespaced_deployment("node", namespace, {"spec": {"replicas": 3}})
    apps.patch_namespaced_stateful_set("sts", namespace, {"spec": {"replicas": 3}})
    emulator.settle()
    assert len(_pods(core, namespace, "app=node")) == 3
    assert sorted(p.metadata.name for p in _pods(core, namespace, "app=sts")) == ["sts-0", "sts-1", "sts-2"]
    apps.patch_namespaced_stateful_set("sts", namespace, {"spec": {"replicas": 1}})
    emulator.settle()
    assert [p.metadata.name for p in _pods(core, namespace, "app=sts")] == ["sts-0"]

    apps.delete_namespaced_deployment("node", namespace)
    apps.delete_namespaced_stateful_set("sts", namespace)
    emulator.tick()
    assert all(p.metadata.deletion_timestamp for p in core.list_namespaced_pod(namespace).items)
    tick_until(emulator, lambda: core.list_namespaced_pod(namespace).items == [])
