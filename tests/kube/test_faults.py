"""Fault injection, in-process and over the `/devnet/faults` admin endpoint."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import retry_on_conflict

from devnet.kube import manifests
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import inject_fault, raw_request


def _write_peers(core: client.CoreV1Api, namespace: str, attempts: list[int]) -> client.V1ConfigMap:
    cm = core.read_namespaced_config_map("peers", namespace)
    attempts.append(1)
    cm.data = {"persistent_peers": f"attempt-{len(attempts)}"}
    return core.replace_namespaced_config_map("peers", namespace, cm)


def test_conflict_storm_over_http_then_retry_wins(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.configmap("peers", namespace, {}))
    fault = inject_fault(
        emulator.url,
        {"type": "conflict", "count": 3, "resource": "configmaps", "namespace": namespace, "name": "peers"},
    )
    assert fault["id"] and fault["count"] == 3
    attempts: list[int] = []
    result = retry_on_conflict(lambda: _write_peers(core, namespace, attempts))
    assert len(attempts) == 4
    assert result.data == {"persistent_peers": "attempt-4"}
    assert emulator.active_faults() == []  # used up


def test_conflict_fault_body_is_a_real_conflict(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.configmap("peers", namespace, {"a": "1"}))
    emulator.inject_fault({"type": "conflict"})  # any object, once
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_config_map("peers", namespace, {"data": {"a": "2"}})
    body = json.loads(caught.value.body)
    assert caught.value.status == 409 and body["reason"] == "Conflict"
    assert body["details"] == {"name": "peers", "kind": "configmaps"}
    assert core.read_namespaced_config_map("peers", namespace).data == {"a": "1"}  # nothing was written
    assert core.patch_namespaced_config_map("peers", namespace, {"data": {"a": "2"}}).data == {"a": "2"}


def test_conflict_storm_longer_than_the_retry_budget_fails(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.configmap("peers", namespace, {}))
    emulator.inject_fault({"type": "conflict", "count": 10})
    attempts: list[int] = []
    with pytest.raises(ApiException) as caught:
        retry_on_conflict(lambda: _write_peers(core, namespace, attempts))
    assert caught.value.status == 409 and len(attempts) == 5  # DEFAULT_RETRY has 5 steps


@pytest.mark.parametrize(
    ("code", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable"), (504, "Timeout")]
)
def test_server_errors_have_status_bodies(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str, code: int, reason: str
) -> None:
    inject_fault(
        emulator.url,
        {
            "type": "error",
            "status": code,
            "count": 1,
            "method": "GET",
            "path_prefix": f"/api/v1/namespaces/{namespace}/configmaps",
        },
    )
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(namespace)
    assert caught.value.status == code
    body = json.loads(caught.value.body)
    assert (body["kind"], body["status"], body["reason"], body["code"]) == ("Status", "Failure", reason, code)
    assert core.list_namespaced_config_map(namespace).items == []  # only the next request failed


def test_retry_after_responses_are_retried_by_the_client(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    # The v37 client (like client-go) retries 429 and 5xx that carry Retry-After, a bounded number of times.
    emulator.inject_fault({"type": "error", "status": 429, "count": 3, "retry_after": 0})
    assert core.list_namespaced_config_map(namespace).items == []
    assert emulator.active_faults() == []
    emulator.inject_fault({"type": "error", "status": 503, "count": 20, "retry_after": 0})
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(namespace)
    assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "0"
    assert 1 < 20 - emulator.active_faults()[0]["count"] < 20  # retried, then gave up


def test_error_fault_filters_by_method(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.configmap("peers", namespace, {}))
    emulator.inject_fault({"type": "error", "status": 500, "count": 2, "method": "PUT"})
    core.read_namespaced_config_map("peers", namespace)  # GETs pass
    cm = core.read_namespaced_config_map("peers", namespace)
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            core.replace_namespaced_config_map("peers", namespace, cm)
        assert caught.value.status == 500
    core.replace_namespaced_config_map("peers", namespace, cm)


def test_latency_fault(core: client.CoreV1Api, emulator: KubeEmulator, namespace: str) -> None:
    emulator.inject_fault({"type": "latency", "seconds": 0.3, "count": 1})
    started = time.monotonic()
    core.list_namespaced_config_map(namespace)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    core.list_namespaced_config_map(namespace)
    assert time.monotonic() - started < 0.3


def test_admin_endpoints(emulator: KubeEmulator) -> None:
    base = f"{emulator.url}/devnet"
    created = raw_request(f"{base}/faults", "POST", {"type": "stall", "namespace": "ns", "name": "node"})
    assert created.status == 201 and created.json()["type"] == "stall"
    assert [f["id"] for f in raw_request(f"{base}/faults").json()["faults"]] == [created.json()["id"]]

    bad = raw_request(f"{base}/faults", "POST", {"type": "meteor"})
    assert bad.status == 400 and "fault type" in bad.json()["error"]
    assert raw_request(f"{base}/faults", "POST", {"type": "error", "status": 200}).status == 400
    assert raw_request(f"{base}/faults", "POST", {"type": "stall"}).status == 400
    assert raw_request(f"{base}/faults/nope", "DELETE").status == 404
    assert raw_request(f"{base}/faults/{created.json()['id']}", "DELETE").status == 200
    raw_request(f"{base}/faults", "POST", {"type": "conflict", "count": 2})
    assert raw_request(f"{base}/faults", "DELETE").json() == {"cleared": 1}

    assert raw_request(f"{base}/step").json() == {"step_seconds": 0.0}
    assert raw_request(f"{base}/step", "PUT", {"step_seconds": 0.5}).json() == {"step_seconds": 0.5}
    assert emulator.step_seconds == 0.5
    emulator.step_seconds = 0
    ticked = raw_request(f"{base}/tick", "POST", {"count": 2}).json()
    assert ticked["writes"] == 0 and ticked["resourceVersion"] == emulator.resource_version
    assert raw_request(f"{base}/clock", "POST", {"advance_seconds": 30}).json() == {"offset_seconds": 30.0}
    assert raw_request(f"{base}/settle", "POST").json()["ticks"] == 1
    assert raw_request(f"{base}/nothing").status == 404
    assert raw_request(f"{base}/tick", "GET").status == 405


def test_faults_stay_off_the_admin_paths(emulator: KubeEmulator) -> None:
    emulator.inject_fault({"type": "error", "status": 503, "count": 5})
    assert raw_request(f"{emulator.url}/devnet/faults").status == 200
    assert raw_request(f"{emulator.url}/api/v1/namespaces").status == 503
