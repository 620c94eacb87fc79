"""The real kubectl (1.32) against the emulator: discovery, get, create, rollout restart and rollout status,
and `auth can-i` / `auth whoami --as` against the shipped RBAC.

Skipped when kubectl is not installed. The background controllers run with a small step here, as in the devnet.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from devnet import shipped_rbac
from devnet.kube import manifests
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import tick_until
from devnet.loop_thread import serve_in_thread
from devnet.real.binaries import NOT_BUILT, kubectl_binary

pytestmark = pytest.mark.kubectl
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed ({result.returncode}): {result.stderr}"
    return result.stdout


def test_get_configmaps_as_json(kubectl: Kubectl, emulator: KubeEmulator, namespace: str) -> None:
    emulator.apply(manifests.configmap("peers", namespace, {"persistent_peers": "a@1.2.3.4:26656"}))
    listed = json.loads(_ok(kubectl("get", "cm", "-n", namespace, "-o", "json")))
    assert [(i["metadata"]["name"], i["data"]) for i in listed["items"]] == [
        ("peers", {"persistent_peers": "a@1.2.3.4:26656"})
    ]
    single = json.loads(_ok(kubectl("get", "configmap", "peers", "-n", namespace, "-o", "json")))
    assert single["kind"] == "ConfigMap" and isinstance(single["metadata"]["resourceVersion"], str)


def test_get_deployments_prints_the_apiserver_columns(
    kubectl: Kubectl, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 3))
    emulator.apply(manifests.statefulset("sts", namespace, 2))
    emulator.settle()
    lines = _ok(kubectl("get", "deploy", "-n", namespace)).splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["node", "3/3", "3", "3"]
    lines = _ok(kubectl("get", "sts", "-n", namespace)).splitlines()
    assert lines[1].split()[:2] == ["sts", "2/2"]
    pods = _ok(kubectl("get", "pods", "-n", namespace, "-l", "app=sts", "-o", "name")).split()
    assert pods == ["pod/sts-0", "pod/sts-1"]


def test_get_namespaces_by_label(kubectl: Kubectl, emulator: KubeEmulator) -> None:
    emulator.apply(manifests.namespace("consumer-b", {"peersync.io/cluster": "bob"}))
    emulator.apply(manifests.namespace("consumer-c", {"peersync.io/cluster": "alice"}))
    out = _ok(kubectl("get", "ns", "-l", "peersync.io/cluster=alice", "-o", "name"))
    assert out.split() == ["namespace/consumer-a", "namespace/consumer-c"]
    table = _ok(kubectl("get", "ns", "-l", "peersync.io/cluster=bob")).splitlines()
    assert table[0].split() == ["NAME", "STATUS", "AGE"] and table[1].split()[:2] == ["consumer-b", "Active"]


def test_rollout_restart_and_status_deployment(
    kubectl: Kubectl, emulator: KubeEmulator, apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 3))
    emulator.settle()
    emulator.step_seconds = 0.02
    assert _ok(kubectl("rollout", "restart", "deployment/node", "-n", namespace)).strip() == (
        "deployment.apps/node restarted"
    )
    out = _ok(kubectl("rollout", "status", "deployment/node", "-n", namespace, "--timeout=30s"))
    assert out.strip().splitlines()[-1] == 'deployment "node" successfully rolled out'
    d = apps.read_namespaced_deployment("node", namespace)
    stamp = d.spec.template.metadata.annotations[manifests.RESTARTED_AT]
    assert d.metadata.generation == 2
    pods = core.list_namespaced_pod(namespace, label_selector="app=node").items
    # As on a real cluster, old pods may still be terminating when kubectl reports the rollout done.
    pods = [p for p in pods if p.metadata.deletion_timestamp is None]
    assert len(pods) == 3 and all(p.metadata.annotations[manifests.RESTARTED_AT] == stamp for p in pods)


def test_rollout_restart_and_status_statefulset(
    kubectl: Kubectl, emulator: KubeEmulator, apps: client.AppsV1Api, namespace: str
) -> None:
    emulator.apply(manifests.statefulset("node", namespace, 3))
    emulator.settle()
    emulator.step_seconds = 0.02
    _ok(kubectl("rollout", "restart", "statefulset/node", "-n", namespace))
    out = _ok(kubectl("rollout", "status", "sts/node", "-n", namespace, "--timeout=30s"))
    last = out.strip().splitlines()[-1]
    assert last.startswith(("partitioned roll out complete", "statefulset rolling update complete")), out
    s = apps.read_namespaced_stateful_set("node", namespace)
    assert (s.status.updated_replicas, s.status.ready_replicas) == (3, 3)


def test_rollout_status_reports_an_exceeded_progress_deadline(
    kubectl: Kubectl, emulator: KubeEmulator, apps: client.AppsV1Api, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 2, progressDeadlineSeconds=5))
    emulator.settle()
    emulator.inject_fault({"type": "stall", "namespace": namespace, "name": "node"})
    _ok(kubectl("rollout", "restart", "deployment/node", "-n", namespace))
    emulator.tick()
    emulator.advance_clock(6)

    def timed_out() -> bool:
        d = apps.read_namespaced_deployment("node", namespace)
        return any(c.reason == "ProgressDeadlineExceeded" for c in d.status.conditions or [])

    tick_until(emulator, timed_out, max_ticks=3)
    result = kubectl("rollout", "status", "deployment/node", "-n", namespace, "--timeout=10s")
    assert result.returncode != 0
    assert 'deployment "node" exceeded its progress deadline' in result.stderr


def test_scale_and_errors(kubectl: Kubectl, emulator: KubeEmulator, namespace: str) -> None:
    emulator.apply(manifests.deployment("node", namespace, 1))
    emulator.settle()
    assert _ok(kubectl("scale", "deployment/node", "-n", namespace, "--replicas=2")).strip() == (
        "deployment.apps/node scaled"
    )
    emulator.settle()
    assert (
        _ok(kubectl("get", "deploy", "node", "-n", namespace, "-o", "jsonpath={.status.readyReplicas}"))
        == "2"
    )
    missing = kubectl("get", "cm", "nope", "-n", namespace)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'


def test_apply_and_create_from_files(kubectl: Kubectl, tmp_path: Path, namespace: str) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: {namespace}\ndata:\n  k: v\n"
    )
    assert _ok(kubectl("apply", "-f", str(manifest))).strip() == "configmap/applied created"
    assert _ok(kubectl("apply", "-f", str(manifest))).strip() == "configmap/applied unchanged"
    manifest.write_text(manifest.read_text().replace("k: v", "k: w"))
    assert _ok(kubectl("apply", "-f", str(manifest))).strip() == "configmap/applied configured"
    _ok(kubectl("delete", "-f", str(manifest)))
    assert _ok(kubectl("create", "-f", str(manifest))).strip() == "configmap/applied created"


def test_set_image_merges_containers_by_name(
    kubectl: Kubectl, emulator: KubeEmulator, apps: client.AppsV1Api, namespace: str
) -> None:
    deployment = manifests.deployment("node", namespace, 1)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"name": "p2p", "containerPort": 26656}]
    container["env"] = [{"name": "CHAIN_ID", "value": "consumer-a"}]
    deployment["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox:1.36"})
    emulator.apply(deployment)
    emulator.settle()
    _ok(kubectl("set", "image", "deployment/node", "node=ghcr.io/cosmos/gaiad:v20.0.0", "-n", namespace))
    d = apps.read_namespaced_deployment("node", namespace)
    node, sidecar = d.spec.template.spec.containers
    assert (node.name, node.image, sidecar.name) == ("node", "ghcr.io/cosmos/gaiad:v20.0.0", "sidecar")
    assert node.ports[0].container_port == 26656 and node.env[0].value == "consumer-a"
    assert d.metadata.generation == 2


def test_get_watch_prints_table_rows_for_each_change(
    kubectl_command: list[str], emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 2))
    emulator.settle()
    command = [*kubectl_command, "get", "deploy", "-n", namespace, "-w", "--request-timeout=20s"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watcher:
        assert watcher.stdout is not None
        try:
            assert watcher.stdout.readline().split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
            assert watcher.stdout.readline().split()[:2] == ["node", "2/2"]
            # kubectl lists, then watches from the list's resourceVersion, so nothing between is lost.
            emulator.apply(manifests.deployment("node", namespace, 3))
            emulator.settle()
            rows = []
            while not rows or rows[-1][:2] != ["node", "3/3"]:
                rows.append(watcher.stdout.readline().split())
            assert all(len(row) == 5 for row in rows)  # full server-side columns, not the NAME/AGE fallback
        finally:
            watcher.kill()


def test_create_namespace_configmap_and_service_account(
    kubectl: Kubectl, core: client.CoreV1Api, tmp_path: Path
) -> None:
    """kubectl's typed clients send these bodies as protobuf only (no JSON fallback on 415)."""
    assert _ok(kubectl("create", "ns", "consumer-x")).strip() == "namespace/consumer-x created"
    created = _ok(kubectl("create", "configmap", "cm", "--from-literal=a=b", "-n", "consumer-x"))
    assert created.strip() == "configmap/cm created"
    blob = tmp_path / "blob"
    blob.write_bytes(b"\xff\x00peers")
    _ok(kubectl("create", "configmap", "bin", f"--from-file={blob}", "-n", "consumer-x"))
    assert (
        _ok(kubectl("create", "sa", "runner", "-n", "consumer-x")).strip() == "serviceaccount/runner created"
    )
    assert core.read_namespace("consumer-x").status.phase == "Active"
    assert core.read_namespaced_config_map("cm", "consumer-x").data == {"a": "b"}
    binary = core.read_namespaced_config_map("bin", "consumer-x").binary_data
    assert base64.b64decode(binary["blob"]) == b"\xff\x00peers"
    again = kubectl("create", "ns", "consumer-x")
    assert again.returncode == 1
    assert again.stderr.strip() == 'Error from server (AlreadyExists): namespaces "consumer-x" already exists'


WORKER = f"system:serviceaccount:{shipped_rbac.NAMESPACE}:{shipped_rbac.WORKER_ACCOUNT}"
AS_WORKER = f"--as={WORKER}"


@pytest.fixture
def admin_kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    """kubectl as the cluster admin of an RBAC emulator provisioned as the operator guide says: the
    deploy/kubernetes base, and the consumer RoleBinding in consumer-neutron (not in consumer-other)."""
    binary = kubectl_binary()
    if binary is None:
        pytest.skip(NOT_BUILT)
    emu = KubeEmulator(step_seconds=0, rbac=True)
    with serve_in_thread(emu):
        for obj in shipped_rbac.base_objects():
            emu.apply(obj)
        for ns in ("consumer-neutron", "consumer-other"):
            emu.apply(manifests.namespace(ns))
        emu.apply(shipped_rbac.consumer_binding("consumer-neutron"))
        command = [binary, "--kubeconfig", str(emu.write_kubeconfig(tmp_path / "admin"))]
        command += ["--cache-dir", str(tmp_path / "kube-cache")]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*command, *args], capture_output=True, text=True, timeout=40, check=False)

        yield run


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("update configmaps -n consumer-neutron", "yes"),
        ("get configmaps -n consumer-neutron", "yes"),
        ("patch statefulsets.apps -n consumer-neutron", "yes"),
        ("watch deployments.apps -n consumer-neutron", "yes"),
        ("list pods -n consumer-neutron", "yes"),
        ("list namespaces", "yes"),
        ("delete configmaps -n consumer-neutron", "no"),
        ("get secrets -n consumer-neutron", "no"),
        ("update configmaps -n consumer-other", "no"),
        ("create namespaces", "no"),
    ],
)
def test_auth_can_i_as_the_worker_under_the_shipped_rbac(
    admin_kubectl: Kubectl, question: str, answer: str
) -> None:
    """The operator guide's and troubleshooting's checks (docs/operator-guide.md §3, docs/troubleshooting.md)."""
    result = admin_kubectl("auth", "can-i", *question.split(), AS_WORKER)
    assert (result.stdout.strip(), result.returncode) == (answer, 0 if answer == "yes" else 1), result.stderr


def test_the_operator_guides_rolebinding_then_can_i_and_whoami(admin_kubectl: Kubectl) -> None:
    question = ("auth", "can-i", "update", "configmaps", "-n", "consumer-other", AS_WORKER)
    assert admin_kubectl(*question).stdout.strip() == "no"
    created = admin_kubectl(
        "-n",
        "consumer-other",
        "create",
        "rolebinding",
        "peersync-consumer",
        "--clusterrole=peersync-consumer",
        f"--serviceaccount={shipped_rbac.NAMESPACE}:{shipped_rbac.WORKER_ACCOUNT}",
    )
    assert _ok(created).strip() == "rolebinding.rbac.authorization.k8s.io/peersync-consumer created"
    assert _ok(admin_kubectl(*question)).strip() == "yes"
    assert _ok(admin_kubectl("auth", "can-i", "create", "namespaces")).strip() == "yes"  # the admin itself

    whoami = _ok(admin_kubectl("auth", "whoami", AS_WORKER, "-o", "json"))
    groups = ["system:serviceaccounts", "system:serviceaccounts:peersync", "system:authenticated"]
    assert json.loads(whoami)["status"]["userInfo"] == {"username": WORKER, "groups": groups}
    rules = _ok(admin_kubectl("auth", "can-i", "--list", "-n", "consumer-other", AS_WORKER)).splitlines()
    assert rules[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["configmaps", "[]", "[]", "[get", "update]"] in [line.split() for line in rules]
    assert ["secrets", "[]", "[]", "[get]"] not in [line.split() for line in rules]
