"""The emulator as the devnet uses it: lifecycle, kubeconfig, in-process seeding, discovery and speed."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes import client, watch

from devnet.kube import manifests
from devnet.kube.errors import ApiError
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import raw_request
from devnet.loop_thread import serve_in_thread


def test_kubeconfig_points_at_the_emulator_without_credentials(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    path = emulator.write_kubeconfig(tmp_path / "deep" / "kubeconfig", context="ctx")
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "ctx"
    assert config["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{emulator.port}"
    assert config["users"][0]["user"] == {}
    assert emulator.url == f"http://127.0.0.1:{emulator.port}" and emulator.port > 0


def test_discovery_documents(emulator: KubeEmulator) -> None:
    version = raw_request(f"{emulator.url}/version").json()
    assert (version["major"], version["minor"]) == ("1", "32")
    assert raw_request(f"{emulator.url}/api").json()["versions"] == ["v1"]
    groups = raw_request(f"{emulator.url}/apis").json()
    assert [g["name"] for g in groups["groups"]] == [
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "rbac.authorization.k8s.io",
    ]
    reviews = raw_request(f"{emulator.url}/apis/authorization.k8s.io/v1").json()
    assert [(r["name"], r["verbs"], r["namespaced"]) for r in reviews["resources"]] == [
        ("selfsubjectaccessreviews", ["create"], False),
        ("selfsubjectrulesreviews", ["create"], False),
    ]
    core = raw_request(f"{emulator.url}/api/v1").json()
    short = {r["name"]: r.get("shortNames") for r in core["resources"]}
    assert short["configmaps"] == ["cm"] and short["namespaces"] == ["ns"] and short["pods"] == ["po"]
    apps = raw_request(f"{emulator.url}/apis/apps/v1").json()
    names = {r["name"]: r for r in apps["resources"]}
    assert names["deployments"]["shortNames"] == ["deploy"] and names["statefulsets"]["shortNames"] == ["sts"]
    assert {"deployments/status", "deployments/scale", "statefulsets/status"} <= set(names)
    assert raw_request(f"{emulator.url}/apis/batch/v1").status == 404


def test_apply_creates_then_replaces_with_the_api_rules(emulator: KubeEmulator, namespace: str) -> None:
    created = emulator.apply(manifests.deployment("node", namespace, 2))
    assert created["metadata"]["generation"] == 1 and created["spec"]["progressDeadlineSeconds"] == 600
    same = emulator.apply(manifests.deployment("node", namespace, 2))
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    scaled = emulator.apply(manifests.deployment("node", namespace, 3))
    assert scaled["metadata"]["generation"] == 2
    assert int(scaled["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert emulator.get("deploy", namespace, "node") == scaled
    assert emulator.get("Deployment", namespace, "missing") is None
    assert [d["metadata"]["name"] for d in emulator.list("deployments", namespace)] == ["node"]
    assert (
        emulator.list("namespaces", label_selector="peersync.io/cluster=alice")[0]["metadata"]["name"]
        == namespace
    )
    assert emulator.delete("deployment", namespace, "node") is True
    assert emulator.delete("deployment", namespace, "node") is False
    with pytest.raises(ApiError) as caught:
        emulator.apply(manifests.configmap("cm", "no-such-namespace", {}))
    assert caught.value.code == 404


def test_background_controllers_follow_step_seconds(
    emulator: KubeEmulator, apps: client.AppsV1Api, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace, 1))
    emulator.step_seconds = 0.01  # switched on at runtime; the watch below waits for its writes
    w = watch.Watch()
    for event in w.stream(
        apps.list_namespaced_deployment, namespace, field_selector="metadata.name=node", timeout_seconds=10
    ):
        if (event["object"].status.ready_replicas or 0) >= 1:
            w.stop()
            break
    else:
        pytest.fail("the background controllers did not run")
    emulator.step_seconds = 0


def test_seeding_500_namespaces_is_fast() -> None:
    emulator = KubeEmulator(step_seconds=0)
    with serve_in_thread(emulator):
        started = time.perf_counter()
        for i in range(500):
            ns = f"alice-consumer-{i}"
            emulator.apply(manifests.namespace(ns, {"peersync.io/cluster": "alice"}))
            emulator.apply(manifests.configmap("peers", ns, {"persistent_peers": ""}))
            workload = manifests.deployment if i % 2 else manifests.statefulset
            emulator.apply(workload("node", ns, 2))
        emulator.settle()
        elapsed = time.perf_counter() - started
        assert len(emulator.list("pods")) == 1000
        assert elapsed < 5, f"seeding took {elapsed:.1f}s"


def test_serves_at_least_500_requests_per_second(emulator: KubeEmulator, namespace: str) -> None:
    emulator.apply(manifests.configmap("peers", namespace, {"persistent_peers": "a@1.2.3.4:26656"}))
    url = urlparse(emulator.url)
    paths = [
        f"/api/v1/namespaces/{namespace}/configmaps/peers",
        f"/api/v1/namespaces/{namespace}/configmaps?fieldSelector=metadata.name%3Dpeers",
        "/api/v1/namespaces?labelSelector=peersync.io%2Fcluster%3Dalice",
    ]
    failures: list[int] = []

    def client_loop() -> None:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        for i in range(250):
            connection.request("GET", paths[i % len(paths)])
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = 1000 / (time.perf_counter() - started)
    assert failures == []
    assert rate >= 500, f"only {rate:.0f} requests/s"
