"""The real Kubernetes control plane (issue 10, item 2): one cluster for the module, driven with the official
Python client and the kubectl built from the same release.

The key result is test_rollout_overlap: how many pods of a 1-replica workload are Running at once (terminating
ones included) while the REAL controllers roll it, per strategy; issue 9's claim, measured.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException
from pydantic import BaseModel

from devnet.real.cluster import run_kubectl
from devnet.real.kube import RealKube, RealKubeInfo
from devnet.testbed import eventually
from tests.real.workloads import EXPECTED_MAX_RUNNING, NAMESPACE, workload

pytestmark = [pytest.mark.real, pytest.mark.asyncio(loop_scope="module")]

VERSION = "v1.32.13"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kube(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealKubeInfo]:
    async with RealKube(tmp_path_factory.mktemp("real-kube")) as info:
        print(f"real kube up in {info.startup_seconds} s at {info.url}")
        yield info


@pytest.fixture(scope="module")
def api(kube: RealKubeInfo) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=str(kube.kubeconfig))


@pytest.fixture(scope="module")
def kubectl(kube: RealKubeInfo, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    cache = tmp_path_factory.mktemp("kubectl-cache")

    return functools.partial(run_kubectl, kube.kubectl, kube.kubeconfig, cache)


def _ssl(kube: RealKubeInfo) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(kube.ca_file))


async def test_kubectl_and_rbac(kube: RealKubeInfo, api: k8s.ApiClient, kubectl: Callable[..., Any]) -> None:
    version = json.loads(await kubectl("version", "-o", "json"))
    assert version["clientVersion"]["gitVersion"] == VERSION
    assert version["serverVersion"]["gitVersion"] == VERSION
    nodes = await kubectl("get", "nodes", "--no-headers")
    rows = sorted(line.split()[:2] for line in nodes.splitlines())
    assert rows == [[name, "Ready"] for name in kube.nodes], nodes

    core = k8s.CoreV1Api(api)
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "nobody"}})
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    token = core.create_namespaced_service_account_token("nobody", NAMESPACE, request).status.token
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_ssl(kube)), headers=headers) as http:
        # Authenticated (so the 403 below is the authorizer's, not a bad token)...
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        async with http.post(
            f"{kube.url}/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review
        ) as resp:
            assert resp.status == 201, await resp.text()
            who = (await resp.json())["status"]["userInfo"]
        assert who["username"] == "system:serviceaccount:default:nobody"
        assert set(who["groups"]) == {
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated",
        }
        # ...and refused by RBAC: no binding gives a ServiceAccount the pods.
        async with http.get(f"{kube.url}/api/v1/namespaces/{NAMESPACE}/pods") as resp:
            status, body = resp.status, await resp.json()
    assert status == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods is forbidden: User "system:serviceaccount:default:nobody" cannot list resource "pods" '
        'in API group "" in the namespace "default"',
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }


async def test_configmap_stale_resource_version_is_409(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    created = core.create_namespaced_config_map(
        NAMESPACE, {"metadata": {"name": "stale"}, "data": {"a": "1"}}
    )
    stale = created.metadata.resource_version
    core.replace_namespaced_config_map(
        "stale", NAMESPACE, {"metadata": {"name": "stale", "resourceVersion": stale}, "data": {"a": "2"}}
    )
    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_config_map(
            "stale", NAMESPACE, {"metadata": {"name": "stale", "resourceVersion": stale}, "data": {"a": "3"}}
        )
    assert raised.value.status == 409
    assert json.loads(raised.value.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Operation cannot be fulfilled on configmaps "stale": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "reason": "Conflict",
        "details": {"name": "stale", "kind": "configmaps"},
        "code": 409,
    }
    assert core.read_namespaced_config_map("stale", NAMESPACE).data == {"a": "2"}


# --- rollouts -------------------------------------------------------------------------------------------------


class PodState(BaseModel):
    name: str
    phase: str | None
    terminating: bool
    ready: bool


class Roll(BaseModel):
    max_running: int = 0  # pods Running at once, terminating ones included
    max_existing: int = 0
    seen: list[list[PodState]] = []  # every distinct set of pods the watch showed, in order
    status_during_roll: list[dict[str, Any]] = []  # workload status beside its pods, at each change (polled)
    status_writes: list[dict[str, Any]] = []  # every write to the workload (watched), in order


def _pod_state(pod: Any) -> PodState:
    conditions = pod.status.conditions or []
    return PodState(
        name=pod.metadata.name,
        phase=pod.status.phase,
        terminating=pod.metadata.deletion_timestamp is not None,
        ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
    )


def watch_roll(core: k8s.CoreV1Api, app: str, listed: Any, roll: Roll, started: threading.Event) -> None:
    """Every pod event of `app` after the `listed` pods until all of them are gone and a new one is Ready."""
    pods = {p.metadata.uid: _pod_state(p) for p in listed.items}
    before = set(pods)
    stream = k8s_watch.Watch().stream(
        core.list_namespaced_pod,
        NAMESPACE,
        label_selector=f"app={app}",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=60,
    )
    started.set()
    for event in stream:
        pod = event["object"]
        uid = pod.metadata.uid
        if event["type"] == "DELETED":
            pods.pop(uid, None)
        else:
            pods[uid] = _pod_state(pod)
        roll.max_running = max(roll.max_running, sum(p.phase == "Running" for p in pods.values()))
        roll.max_existing = max(roll.max_existing, len(pods))
        snapshot = sorted(pods.values(), key=lambda p: p.name)
        if not roll.seen or roll.seen[-1] != snapshot:
            roll.seen.append(snapshot)
        fresh = [p for u, p in pods.items() if u not in before]
        if not (before & pods.keys()) and fresh and all(p.ready and not p.terminating for p in fresh):
            return
    raise AssertionError(f"{app}: the roll did not finish within the watch; pods: {pods}")


def _pod_label(pod: Any) -> str:
    return (
        f"{pod.metadata.name}:{pod.status.phase}{':terminating' if pod.metadata.deletion_timestamp else ''}"
    )


async def _record_status(api: k8s.ApiClient, kind: str, app: str, roll: Roll, done: asyncio.Event) -> None:
    """The workload's status beside its pods, each time either changes, until `done` (polled: 100 ms)."""
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    read = (
        apps.read_namespaced_deployment_status
        if kind == "deployment"
        else apps.read_namespaced_stateful_set_status
    )
    while not done.is_set():
        pods = (
            await asyncio.to_thread(core.list_namespaced_pod, NAMESPACE, label_selector=f"app={app}")
        ).items
        status = (await asyncio.to_thread(read, app, NAMESPACE)).status
        record = {
            "pods": sorted(_pod_label(p) for p in pods),
            **{
                f: getattr(status, f) or 0
                for f in ("replicas", "updated_replicas", "ready_replicas", "available_replicas")
            },
            "conditions": [f"{c.type}={c.status}/{c.reason}" for c in (status.conditions or [])],
        }
        if not roll.status_during_roll or roll.status_during_roll[-1] != record:
            roll.status_during_roll.append(record)
        await asyncio.sleep(0.1)


def _is_rolled_out(kind: str, obj: Any) -> bool:
    s = obj.status
    if s.observed_generation != obj.metadata.generation:
        return False
    if kind == "deployment":
        return bool(s.replicas == s.updated_replicas == s.ready_replicas == s.available_replicas == 1)
    return bool(
        s.replicas == s.ready_replicas == s.updated_replicas == 1 and s.current_revision == s.update_revision
    )


def watch_workload(api: k8s.ApiClient, kind: str, app: str, since: Any, roll: Roll) -> None:
    """Every write to the workload after `since` (exact, unlike the poll), until the restart has rolled out."""
    apps = k8s.AppsV1Api(api)
    lister = apps.list_namespaced_deployment if kind == "deployment" else apps.list_namespaced_stateful_set
    stream = k8s_watch.Watch().stream(
        lister,
        NAMESPACE,
        field_selector=f"metadata.name={app}",
        resource_version=since.metadata.resource_version,
        timeout_seconds=60,
    )
    for event in stream:
        obj = event["object"]
        s = obj.status
        roll.status_writes.append(
            {
                "generation": obj.metadata.generation,
                "observed": s.observed_generation,
                **{
                    f: getattr(s, f) or 0
                    for f in ("replicas", "updated_replicas", "ready_replicas", "available_replicas")
                },
                "conditions": [f"{c.type}={c.status}/{c.reason}" for c in (s.conditions or [])],
            }
        )
        if obj.metadata.generation > since.metadata.generation and _is_rolled_out(kind, obj):
            return
    raise AssertionError(f"{app}: the restart did not roll out within the watch: {roll.status_writes}")


async def _rolled_out(api: k8s.ApiClient, kind: str, name: str) -> bool:
    apps = k8s.AppsV1Api(api)
    read = (
        apps.read_namespaced_deployment_status
        if kind == "deployment"
        else apps.read_namespaced_stateful_set_status
    )
    return _is_rolled_out(kind, await asyncio.to_thread(read, name, NAMESPACE))


# Issue 9: a RollingUpdate (any maxSurge) overlaps the old and the new pod; Recreate and a StatefulSet never do.


@pytest.mark.parametrize("name", list(EXPECTED_MAX_RUNNING))
async def test_rollout_overlap(
    name: str, kube: RealKubeInfo, api: k8s.ApiClient, kubectl: Callable[..., Any]
) -> None:
    kind, manifest = workload(name)
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    create = (
        apps.create_namespaced_deployment if kind == "deployment" else apps.create_namespaced_stateful_set
    )
    await asyncio.to_thread(create, NAMESPACE, manifest)
    await eventually(lambda: _rolled_out(api, kind, name), timeout=30, what=f"{name} first rollout")

    pods = await asyncio.to_thread(core.list_namespaced_pod, NAMESPACE, label_selector=f"app={name}")
    assert [p.spec.node_name in kube.nodes for p in pods.items] == [True], "scheduled by the real scheduler"
    roll, started, done = Roll(), threading.Event(), asyncio.Event()
    watcher = asyncio.create_task(asyncio.to_thread(watch_roll, core, name, pods, roll, started))
    await asyncio.to_thread(started.wait, 10)
    poller = asyncio.create_task(_record_status(api, kind, name, roll, done))
    read = apps.read_namespaced_deployment if kind == "deployment" else apps.read_namespaced_stateful_set
    since = await asyncio.to_thread(read, name, NAMESPACE)
    writes = asyncio.create_task(asyncio.to_thread(watch_workload, api, kind, name, since, roll))
    await kubectl("rollout", "restart", f"{kind}/{name}")  # the pod-template patch kubectl itself sends
    await asyncio.wait_for(watcher, 60)
    await asyncio.wait_for(writes, 60)
    done.set()
    await poller

    report = roll.model_dump()
    print(f"\n{name}: {json.dumps(report, indent=1)}")
    (kube.state_dir / f"roll-{name}.json").write_text(json.dumps(report, indent=1))
    assert roll.max_running == EXPECTED_MAX_RUNNING[name], report
    terminating = [r for r in roll.status_during_roll if any(p.endswith(":terminating") for p in r["pods"])]
    assert terminating, f"{name}: no terminating pod was ever seen (grace period not honoured?)"
    # Polled, so a record may pair pods with a status a moment older: assert on some record, not on all.
    active = [(r, sum(not p.endswith(":terminating") for p in r["pods"])) for r in terminating]
    if kind == "deployment":
        # As the emulator says: status.replicas leaves terminating pods out (the ReplicaSet's FilterActivePods).
        assert any(r["replicas"] == n < len(r["pods"]) for r, n in active), report
    else:
        # Unlike a Deployment, a StatefulSet counts its terminating pod in status.replicas (and, as kwok keeps
        # it Ready until it goes, in readyReplicas).
        assert any(
            r["replicas"] == r["ready_replicas"] == len(r["pods"]) == 1 and n == 0 for r, n in active
        ), report
