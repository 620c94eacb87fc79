"""Kube emulator fidelity (issue 10, item 7, kube part): the SAME requests to a real v1.32.13 apiserver
(devnet.real.kube, RBAC+Node authorizers) and to the kube emulator (devnet.kube, rbac=True), compared field by
field: objects as created and applied, 409/403/404/422 bodies, watch events, and the pod-template patches
`kubectl rollout restart` and peersync's restart send.

Both sides are driven over HTTP only (aiohttp, and the built kubectl for `apply`); the emulator's in-process
API is used only to step its controllers and to issue a ServiceAccount token (it serves no TokenRequest).
Values that legitimately differ between two clusters are normalised: uids, resourceVersions, times,
managedFields, pod-template hashes in generated names. Everything else (field names, defaults, null vs
absent, Status reason/message/details/code, event order and types) must be equal, so any drift fails here.

One real control plane and one emulator for the module (the real one takes ~10-20 s to start on 2 cores).
"""

from __future__ import annotations

import copy
import json
import re
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from pydantic import BaseModel

from activities.rollout_status import verdict
from devnet.kube.server import KubeEmulator
from devnet.loop_thread import serve_in_thread
from devnet.real.binaries import binary
from devnet.real.cluster import run_kubectl
from devnet.real.kube import RealKube
from devnet.scenario import default_scenario
from devnet.testbed import eventually
from devnet.world import namespace_objects
from tests.real.compare import differences

pytestmark = [pytest.mark.real, pytest.mark.asyncio(loop_scope="module")]

SCENARIO = default_scenario()
CLUSTER = SCENARIO.clusters[0]
# consumer-1: Deployment (Recreate, 2 replicas, config.toml); consumer-2: StatefulSet (init.sh);
# consumer-3: Deployment (RollingUpdate, key). The first two are POSTed, the third `kubectl apply`d.
SEEDED = {str(ns.name): namespace_objects(SCENARIO, CLUSTER, ns) for ns in SCENARIO.namespaces(CLUSTER)}
NS_POSTED, NS_STS, NS_APPLIED = list(SEEDED)
READER = "fidelity-reader"  # a ServiceAccount that may only read ConfigMaps in NS_POSTED
MISSING_ROLE = "fidelity-missing"  # a ClusterRole a RoleBinding names but nobody created
FIELD_MANAGER = "peersync"  # activities.kube_ops.FIELD_MANAGER
HASH = "peersync.io/peers-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


# ---- the two clusters ----------------------------------------------------------------------------------------


class Reply(BaseModel):
    status: int
    content_type: str | None  # the media type (a Status is JSON; Go's NotFound is text/plain)
    body: Any


@dataclass
class Side:
    """One cluster, seen only through its URL (as the cluster admin, or with a ServiceAccount's token)."""

    name: str
    url: str
    admin: aiohttp.ClientSession
    anonymous: aiohttp.ClientSession  # no client certificate: a bearer token is the only credential
    kubeconfig: Path
    cache: Path
    tokens: dict[str, str] = field(default_factory=dict)  # ServiceAccount name -> bearer token

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        as_sa: str | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        http, headers = self.admin, {"Content-Type": content_type}
        if as_sa is not None:
            http, headers["Authorization"] = self.anonymous, f"Bearer {self.tokens[as_sa]}"
        data = None if body is None else json.dumps(body)
        async with http.request(method, self.url + path, data=data, headers=headers, params=params) as resp:
            text = await resp.text()
            content_type = resp.headers.get("Content-Type", "").split(";")[0] or None
            try:
                return Reply(status=resp.status, content_type=content_type, body=json.loads(text))
            except json.JSONDecodeError:
                return Reply(status=resp.status, content_type=content_type, body=text)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        reply = await self.call(method, path, body, **kw)
        assert reply.status in (200, 201), f"{self.name}: {method} {path} -> {reply.status}: {reply.body}"
        return reply.body

    async def kubectl(self, *args: str) -> str:
        return await run_kubectl(binary("kubectl"), self.kubeconfig, self.cache, *args)


@dataclass
class Worlds:
    real: Side
    emu: Side
    emulator: KubeEmulator

    def __iter__(self) -> Iterator[Side]:
        return iter((self.real, self.emu))

    async def both(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[Reply, Reply]:
        """The same request to each side (a deep copy each, so neither sees what the other did to it)."""
        real = await self.real.call(method, path, copy.deepcopy(body), **kw)
        emu = await self.emu.call(method, path, copy.deepcopy(body), **kw)
        return real, emu


def _client_cert_context(kubeconfig: Path, ca: Path) -> ssl.SSLContext:
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(user["client-certificate"], user["client-key"])
    return context


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    # rbac=True: a bearer token is a ServiceAccount checked against the live Roles, no header is the admin.
    # history_size: small, so that a watch from resourceVersion 1 is too old, as on the real apiserver (whose
    # watch cache starts at the RV it was started at); every watch here starts from a fresh RV.
    emu = KubeEmulator(step_seconds=0, rbac=True, history_size=20)
    with serve_in_thread(emu):
        emu.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        yield emu


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worlds(tmp_path_factory: pytest.TempPathFactory, emulator: KubeEmulator) -> AsyncIterator[Worlds]:
    async with RealKube(tmp_path_factory.mktemp("real-kube")) as info:
        print(f"real kube up in {info.startup_seconds} s at {info.url}")
        timeout = aiohttp.ClientTimeout(total=30)
        real_tls = _client_cert_context(info.kubeconfig, info.ca_file)
        ca_only = ssl.create_default_context(cafile=str(info.ca_file))
        emu_dir = tmp_path_factory.mktemp("emulator")
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=real_tls), timeout=timeout
            ) as real_admin,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca_only), timeout=timeout) as real_sa,
            aiohttp.ClientSession(timeout=timeout) as emu_http,
        ):
            real = Side(
                "real",
                info.url,
                real_admin,
                real_sa,
                info.kubeconfig,
                tmp_path_factory.mktemp("kubectl-real"),
            )
            emu = Side(
                "emulator",
                emulator.url,
                emu_http,
                emu_http,
                emulator.write_kubeconfig(emu_dir / "kubeconfig"),
                emu_dir / "kubectl-cache",
            )
            yield Worlds(real, emu, emulator)


# ---- normalising and comparing -------------------------------------------------------------------------------

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# A ReplicaSet or pod name generated from a pod-template hash: Kubernetes' safe alphabet (no vowels, no 0/1/3)
# with at least one digit, so a plain word ("mismatched-selector") is never taken for one.
HASHED = re.compile(
    r"\b([a-z0-9-]+?)-(?=[bcdfghjklmnpqrstvwxz2456789]*\d)[bcdfghjklmnpqrstvwxz2456789]{5,10}\b"
)
DROPPED_METADATA = {"uid", "resourceVersion", "creationTimestamp", "managedFields"}


def normalise(value: Any, path: str = "") -> Any:
    """Replace values that legitimately differ between two clusters by their shape."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if path.endswith(".metadata") and k in DROPPED_METADATA:
                continue
            out[k] = normalise(v, f"{path}.{k}")
        return out
    if isinstance(value, list):
        return [normalise(v, f"{path}[]") for v in value]
    if not isinstance(value, str):
        return value
    leaf = path.rsplit(".", 1)[-1]
    if leaf == "uid":
        return "<uid>"
    if TIME.match(value):
        return "<time>"
    if leaf in {"currentRevision", "updateRevision", "pod-template-hash"}:
        return "<hash>"
    if leaf == "message":
        value = re.sub(
            r"too old resource version: \d+ \(\d+\)", "too old resource version: <rv> (<rv>)", value
        )
        return HASHED.sub(r"\1-<hash>", value)
    return value


def compare(what: str, real: Reply, emu: Reply) -> list[str]:
    found = [f"{what}: HTTP {real.status} real vs {emu.status} emulator"] if real.status != emu.status else []
    if real.content_type != emu.content_type:
        found.append(f"{what}: Content-Type {real.content_type} real vs {emu.content_type} emulator")
    return found + [f"{what}: {d}" for d in differences(normalise(real.body), normalise(emu.body))]


def report(found: list[str]) -> str:
    return "differences (real vs emulator):\n  " + "\n  ".join(found)


def _path(obj: dict[str, Any], name: str | None = None) -> str:
    kind, namespace = obj["kind"], obj["metadata"].get("namespace")
    plural = {"Namespace": "namespaces", "ConfigMap": "configmaps"}.get(kind) or f"{kind.lower()}s"
    base = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return base if name is None else f"{base}/{name}"


def _of(obj: dict[str, Any]) -> str:
    return _path(obj, obj["metadata"]["name"])


# ---- 1. objects after create and apply -----------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(worlds: Worlds) -> dict[str, tuple[Reply, Reply]]:
    """Two namespaces' objects POSTed, the third's `kubectl apply`d, on both sides: the create replies."""
    created: dict[str, tuple[Reply, Reply]] = {}
    for namespace in (NS_POSTED, NS_STS):
        for obj in SEEDED[namespace]:
            created[f"POST {_of(obj)}"] = await worlds.both("POST", _path(obj), obj)
    for side in worlds:
        manifest = side.cache.parent / f"{side.name}-{NS_APPLIED}.yaml"
        manifest.write_text(yaml.safe_dump_all(SEEDED[NS_APPLIED], sort_keys=False))
        await side.kubectl("apply", "-f", str(manifest))
    worlds.emulator.settle()
    return created


async def test_created_objects_carry_the_real_defaults(seeded: dict[str, tuple[Reply, Reply]]) -> None:
    found = [d for what, (real, emu) in seeded.items() for d in compare(what, real, emu)]
    assert not found, report(found)


async def _rolled_out(side: Side, obj: dict[str, Any]) -> bool:
    current = await side.ok("GET", _of(obj))
    status = current.get("status") or {}
    replicas = current["spec"]["replicas"]
    return verdict(obj["kind"].lower(), current).done and status.get("readyReplicas") == replicas


async def test_seeded_objects_match_once_rolled_out(worlds: Worlds, seeded: Any) -> None:
    """GET after the controllers ran (and, for the third namespace, after a client-side `kubectl apply`)."""
    found = []
    for objects in SEEDED.values():
        for obj in objects:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                await eventually(lambda o=obj: _rolled_out(worlds.real, o), 60, f"{_of(obj)} rolled out")
            real, emu = await worlds.both("GET", _of(obj))
            found += compare(f"GET {_of(obj)}", real, emu)
    assert not found, report(found)


async def test_put_back_unchanged_is_a_no_op(worlds: Worlds, seeded: Any) -> None:
    """What an `apply` of an unchanged object amounts to: same resourceVersion, same generation."""
    for side in worlds:
        for obj in SEEDED[NS_POSTED]:
            before = await side.ok("GET", _of(obj))
            after = await side.ok("PUT", _of(obj), before)
            assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], side.name
            assert after["metadata"].get("generation") == before["metadata"].get("generation"), side.name


# ---- 2. 409 bodies -------------------------------------------------------------------------------------------


async def test_conflict_and_already_exists(worlds: Worlds, seeded: Any) -> None:
    configmap = SEEDED[NS_POSTED][1]
    found = []
    for_side: dict[str, dict[str, Any]] = {}
    for side in worlds:
        stale = await side.ok("GET", _of(configmap))
        fresh = copy.deepcopy(stale)
        fresh["data"]["extra"] = "1"
        await side.ok("PUT", _of(configmap), fresh)  # moves the resourceVersion on
        stale["data"]["extra"] = "2"
        for_side[side.name] = stale
    real = await worlds.real.call("PUT", _of(configmap), for_side["real"])
    emu = await worlds.emu.call("PUT", _of(configmap), for_side["emulator"])
    found += compare("PUT stale", real, emu)
    assert real.status == 409 and real.body["reason"] == "Conflict", real
    for obj in SEEDED[NS_POSTED]:
        real, emu = await worlds.both("POST", _path(obj), obj)
        assert real.status == 409, real
        found += compare(f"POST existing {obj['kind']}", real, emu)
    assert not found, report(found)


# ---- 3. 403 bodies -------------------------------------------------------------------------------------------


async def _grant_reader(worlds: Worlds) -> None:
    ns = NS_POSTED
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    objects = [
        (
            f"/api/v1/namespaces/{ns}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": READER}},
        ),
        (
            f"{rbac}/namespaces/{ns}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": READER},
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
                ],
            },
        ),
    ]
    for role_kind, role in (("Role", READER), ("ClusterRole", MISSING_ROLE)):
        objects.append(
            (
                f"{rbac}/namespaces/{ns}/rolebindings",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": role},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
                    "subjects": [{"kind": "ServiceAccount", "name": READER}],
                },
            )
        )
    for path, obj in objects:
        for side in worlds:
            await side.ok("POST", path, obj)
    token_request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    reply = await worlds.real.ok(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{READER}/token", token_request
    )
    worlds.real.tokens[READER] = reply["status"]["token"]
    worlds.emu.tokens[READER] = worlds.emulator.issue_token(ns, READER)
    # The real authorizer reads RBAC from informers: wait until it has seen the binding.
    configmap = _of(SEEDED[ns][1])
    for side in worlds:
        await eventually(
            lambda s=side: _status_is(s, configmap, 200), 20, f"{side.name}: {READER} may read the ConfigMap"
        )


async def _status_is(side: Side, path: str, status: int) -> bool:
    return (await side.call("GET", path, as_sa=READER)).status == status


async def test_forbidden_bodies(worlds: Worlds, seeded: Any) -> None:
    await _grant_reader(worlds)
    configmap, deployment = SEEDED[NS_POSTED][1], SEEDED[NS_POSTED][2]
    requests: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("PUT", _of(configmap), None, {}),  # body filled per side below (a real object)
        ("DELETE", _of(configmap), None, {}),
        (
            "PATCH",
            _of(deployment),
            {"spec": {"paused": True}},
            {"content_type": "application/strategic-merge-patch+json"},
        ),
        ("GET", _path(SEEDED[NS_STS][2]), None, {}),  # another namespace, no binding there
        ("GET", "/api/v1/namespaces", None, {}),  # cluster scope
        ("GET", _path(deployment), None, {"params": {"watch": "1", "fieldSelector": "metadata.name=x"}}),
        (
            "POST",
            f"/api/v1/namespaces/{NS_POSTED}/serviceaccounts/{READER}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
            {},
        ),
    ]
    found = []
    for method, path, body, kw in requests:
        replies = []
        for side in worlds:
            payload = body if method != "PUT" else await side.ok("GET", path)
            replies.append(await side.call(method, path, copy.deepcopy(payload), as_sa=READER, **kw))
        assert replies[0].status == 403, replies[0]
        print(f"403 {method} {path}: {replies[0].body}")
        found += compare(f"{method} {path} as {READER}", *replies)
    assert not found, report(found)


# ---- 4. 404 and 422 bodies -----------------------------------------------------------------------------------


def _configmap(namespace: str, name: str | None, data: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": namespace}
    if name is not None:
        meta["name"] = name
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"a": "b"}}


def _labelled(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    obj = _configmap(namespace, name)
    obj["metadata"]["labels"] = labels
    return obj


def _broken_deployments(namespace: str) -> dict[str, dict[str, Any]]:
    """The seeded Deployment with one thing wrong each (the name says what)."""
    seeded = SEEDED[namespace][2]
    out = {}
    for name, breaks in {
        "mismatched-selector": lambda s: s.update(selector={"matchLabels": {"app": "other"}}),
        "negative-replicas": lambda s: s.update(replicas=-1),
        "no-image": lambda s: s["template"]["spec"]["containers"][0].pop("image"),
        "no-containers": lambda s: s["template"]["spec"].update(containers=[]),
    }.items():
        obj = copy.deepcopy(seeded)
        obj["metadata"]["name"] = name
        breaks(obj["spec"])
        out[name] = obj
    return out


async def test_not_found_and_invalid_bodies(worlds: Worlds, seeded: Any) -> None:
    ns = NS_POSTED
    configmaps = f"/api/v1/namespaces/{ns}/configmaps"
    deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
    requests: list[tuple[str, str, Any]] = [
        ("GET", f"{configmaps}/missing", None),
        ("GET", "/api/v1/namespaces/no-such-namespace/configmaps/missing", None),
        ("GET", f"{deployments}/missing", None),
        ("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/missing", None),
        ("GET", "/api/v1/namespaces/no-such-namespace", None),
        ("GET", f"/api/v1/namespaces/{ns}/widgets", None),
        ("GET", "/apis/nosuch.example.com/v1/things", None),  # outside every group: Go's plain NotFound
        ("GET", "/apis/nosuch.example.com", None),
        ("GET", "/apis/apps/v9", None),  # a served group, an unserved version: a Status
        ("GET", "/nosuch", None),
        ("GET", "/openapi/v3/apis/nosuch.example.com/v1", None),
        ("GET", f"{configmaps}/missing/nosuch", None),
        ("DELETE", f"{configmaps}/missing", None),
        ("PATCH", f"{configmaps}/missing", {"data": {"a": "b"}}),
        ("PUT", f"{configmaps}/missing", _configmap(ns, "missing")),
        ("POST", "/api/v1/namespaces/no-such-namespace/configmaps", _configmap("no-such-namespace", "x")),
        ("POST", configmaps, _configmap(ns, "Bad_Name")),
        ("POST", configmaps, _configmap(ns, None)),
        ("POST", configmaps, _configmap(ns, "bad-key", {"no/slash": "x"})),
        ("POST", configmaps, _labelled(ns, "bad-label-key", {"bad key": "x"})),
        ("POST", configmaps, _labelled(ns, "bad-label-value", {"k": "-x-"})),
        (
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad"}},
        ),
        *(("POST", deployments, obj) for obj in _broken_deployments(ns).values()),
    ]
    changed_selector = copy.deepcopy(SEEDED[ns][2])
    changed_selector["spec"]["selector"]["matchLabels"]["extra"] = "x"
    changed_selector["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    found = []
    for i, (method, path, body) in enumerate(requests):
        ct = "application/merge-patch+json" if method == "PATCH" else "application/json"
        real, emu = await worlds.both(method, path, body, content_type=ct)
        assert real.status in (404, 422), real
        found += compare(f"[{i}] {method} {path}", real, emu)
    replies = []
    for side in worlds:  # an update of an immutable field: the side's own object (resourceVersion), changed
        current = await side.ok("GET", _of(changed_selector))
        current["spec"]["selector"] = changed_selector["spec"]["selector"]
        current["spec"]["template"]["metadata"]["labels"] = changed_selector["spec"]["template"]["metadata"][
            "labels"
        ]
        replies.append(await side.call("PUT", _of(changed_selector), current))
    assert replies[0].status == 422, replies[0]
    found += compare("PUT changed selector", *replies)
    assert not found, report(found)


# ---- 5. watch events -----------------------------------------------------------------------------------------


async def _watch(side: Side, path: str, rv: str, count: int, actions: Any) -> list[Any]:
    """Open a watch on `path` from `rv`, run `actions(side)`, and read `count` events (or up to the stream's
    end); the first entry is the HTTP status."""
    events: list[Any] = []
    params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "10"}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=20)  # > timeoutSeconds
    async with side.admin.get(side.url + path, params=params, timeout=timeout) as resp:
        events.append({"http": resp.status})
        await actions(side)
        while len(events) <= count and (line := await resp.content.readline()):
            events.append(json.loads(line))
        if count == 1:  # an ERROR event: the apiserver ends the stream right after it
            events.append({"ended": not await resp.content.readline()})
    return events


async def test_watch_events(worlds: Worlds, seeded: Any) -> None:
    """ConfigMap create, merge-patch, delete, seen by a namespace watch started at the list's RV."""
    ns, name = NS_STS, "watched"
    path = f"/api/v1/namespaces/{ns}/configmaps"

    async def writes(side: Side) -> None:
        await side.ok("POST", path, _configmap(ns, name))
        patch = {"metadata": {"annotations": {HASH: "abc"}}, "data": {"a": "c"}}
        await side.ok("PATCH", f"{path}/{name}", patch, content_type="application/merge-patch+json")
        await side.ok("DELETE", f"{path}/{name}")

    seen = {}
    for side in worlds:
        listed = await side.ok("GET", path)
        seen[side.name] = await _watch(side, path, listed["metadata"]["resourceVersion"], 3, writes)
    print(json.dumps(seen, indent=1))
    assert [e.get("type") for e in seen["real"][1:]] == ["ADDED", "MODIFIED", "DELETED"], seen["real"]
    for side_name, events in seen.items():  # RVs grow along the stream; the DELETED object carries a new one
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events[1:]]
        assert rvs == sorted(set(rvs)), (side_name, rvs)
    found = [f"watch: {d}" for d in differences(normalise(seen["real"]), normalise(seen["emulator"]))]
    assert not found, report(found)


CRD_GROUP = "fidelity.peersync.io"


async def _real_resource_with_a_young_watch_cache(side: Side) -> str:
    """A namespaced custom resource created now: its watch cache starts at today's RV, so RV 1 is too old.

    The ConfigMap watch cache of a fresh cluster starts at RV ~1 and grows (up to 100k events) rather than
    forget anything young, so "too old" cannot be provoked on ConfigMaps in a test; a custom resource's cache
    goes through the same code (Cacher: `too old resource version: <rv> (<oldest>)`)."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{CRD_GROUP}"},
        "spec": {
            "group": CRD_GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    await side.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    path = f"/apis/{CRD_GROUP}/v1/namespaces/{NS_STS}/widgets"
    await eventually(lambda: _served(side, path), 20, "the Widget resource served")
    return path


async def _served(side: Side, path: str) -> bool:
    return (await side.call("GET", path)).status == 200


async def test_watch_from_a_too_old_resource_version(worlds: Worlds, seeded: Any) -> None:
    real_path = await _real_resource_with_a_young_watch_cache(worlds.real)
    emu_path = f"/api/v1/namespaces/{NS_STS}/configmaps"  # its history (20 events) is long gone
    assert int(worlds.emulator.resource_version) > 40
    real = await _watch(worlds.real, real_path, "1", 1, _nothing)
    emu = await _watch(worlds.emu, emu_path, "1", 1, _nothing)
    print(json.dumps({"real": real, "emulator": emu}, indent=1))
    assert real[1]["type"] == "ERROR" and real[1]["object"]["code"] == 410, real
    found = [f"too-old watch: {d}" for d in differences(normalise(real), normalise(emu))]
    assert not found, report(found)


async def _nothing(side: Side) -> None:
    return None


# ---- 6. pod-template patches (kubectl rollout restart, peersync's restart) -----------------------------------


async def test_template_patches(worlds: Worlds, seeded: Any) -> None:
    found = []
    for workload in (SEEDED[NS_POSTED][2], SEEDED[NS_STS][2]):
        patches = [
            ("application/strategic-merge-patch+json", {RESTARTED_AT: "2025-01-01T00:00:00Z"}),  # kubectl
            ("application/strategic-merge-patch+json", {HASH: "h2", RESTARTED_AT: "2025-01-01T00:00:01Z"}),
            ("application/merge-patch+json", {HASH: "h3", RESTARTED_AT: "2025-01-01T00:00:02Z"}),
            ("application/merge-patch+json", {HASH: "h3", RESTARTED_AT: "2025-01-01T00:00:02Z"}),  # no-op
        ]
        generations: dict[str, list[int]] = {"real": [], "emulator": []}
        for content_type, notes in patches:
            body = {"spec": {"template": {"metadata": {"annotations": notes}}}}
            real, emu = await worlds.both(
                "PATCH",
                _of(workload),
                body,
                content_type=content_type,
                params={"fieldManager": FIELD_MANAGER},
            )
            for side_name, reply in (("real", real), ("emulator", emu)):
                assert reply.status == 200, (side_name, reply)
                generations[side_name].append(reply.body["metadata"]["generation"])
                reply.body.pop("status", None)  # the controllers' business (test_rollout_fidelity)
            found += compare(f"PATCH {content_type} {_of(workload)}", real, emu)
        assert generations["real"] == generations["emulator"], generations
        assert generations["real"][-1] == generations["real"][-2] == generations["real"][0] + 2, generations
    assert not found, report(found)
