"""deploy/kubernetes against the code it deploys, rendered with the real `kubectl kustomize` (no cluster).

RBAC: the (verb, resource) pairs the ClusterRoles grant must be exactly those of the kubernetes client calls
in activities/ and workers/, derived here from the source with `ast` and resolved through the client's own
URL paths: a new call without a rule, or a rule that nothing calls, fails. Deployments: every setting is
a real Settings variable and loads, probes hit the metrics port, the grace period outlasts the worker's
graceful shutdown, the containers are locked down, the watcher has no token.
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from pydantic import AliasChoices

from devnet import shipped_rbac
from devnet.real.binaries import NOT_BUILT, kubectl_binary
from workers.settings import Settings, load_settings
from workers.watcher import BACKOFF_MAX
from workers.worker import GRACEFUL_SHUTDOWN

ROOT = Path(__file__).resolve().parents[2]
KUBE_DIR = ROOT / "deploy" / "kubernetes"
BASE = "base"
EXAMPLE = "overlays/example"
CONSUMER = "consumer-namespace"
CODE_DIRS = (ROOT / "activities", ROOT / "workers")

NAMESPACE = "peersync"
WORKER_SA, WATCHER_SA = "peersync-worker", "peersync-watcher"
NAMESPACES_ROLE, CONSUMER_ROLE = "peersync-namespaces", "peersync-consumer"
SETTINGS_CM = "peersync-settings"
METRICS_SERVICE = "peersync-metrics"
RBAC_GROUP = "rbac.authorization.k8s.io"
WORKER_SUBJECT = {"kind": "ServiceAccount", "name": WORKER_SA, "namespace": NAMESPACE}

# ---- what the code calls ---------------------------------------------------------------------------------

API_CLASSES = (k8s.CoreV1Api, k8s.AppsV1Api)
API_METHOD = re.compile(
    r"^(?P<action>read|list|replace|patch|create|delete_collection|delete)_(?P<namespaced>namespaced_)?"
    r"(?P<kind>[a-z_]+?)(?P<status>_status)?$"
)
# Variants of every API method that make the same request.
CALL_VARIANT = re.compile(r"_(with_http_info|without_preload_content)$")
VERBS = {
    "read": "get",
    "list": "list",
    "replace": "update",
    "patch": "patch",
    "create": "create",
    "delete": "delete",
    "delete_collection": "deletecollection",
}
HTTP_METHODS = {"read": "GET", "list": "GET", "replace": "PUT", "patch": "PATCH", "create": "POST"}
HTTP_METHODS |= {"delete": "DELETE", "delete_collection": "DELETE"}
# Plurals that "drop the underscores, add s" gets wrong; each is still checked against the URL path.
IRREGULAR_PLURALS = {"endpoints": "endpoints", "componentstatus": "componentstatuses"}
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True, order=True)
class Access:
    verb: str
    group: str  # "" is the core group
    resource: str  # plural, with "/subresource" if any
    cluster_scoped: bool


def pluralise(kind: str) -> str:
    word = kind.replace("_", "")
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _request_line(cls: type, name: str) -> tuple[str, str]:
    """(HTTP method, URL path template) of an API method, read from the client's generated source."""
    for helper in (f"_{name}_serialize", f"{name}_with_http_info"):  # client >= 35, older clients
        if not hasattr(cls, helper):
            continue
        source = inspect.getsource(getattr(cls, helper))
        if found := re.search(r"method='(\w+)',\s*resource_path='([^']+)'", source):
            return found[1], found[2]
        if found := re.search(r"call_api\(\s*'([^']+)',\s*'(\w+)'", source):
            return found[2], found[1]
    raise AssertionError(f"no request URL found in the source of {cls.__name__}.{name}")


def _parse_path(path: str) -> tuple[str, bool, str]:
    """'/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status' -> ('apps', True, 'deployments/status')."""
    found = re.fullmatch(r"/(?:api/v1|apis/(?P<group>[a-z0-9.-]+)/[a-z0-9]+)/(?P<rest>.+)", path)
    assert found, f"unexpected API path {path}"
    parts = found["rest"].split("/")
    namespaced = len(parts) > 2 and parts[:2] == ["namespaces", "{namespace}"]
    if namespaced:
        parts = parts[2:]
    resource = parts[0] if len(parts) < 3 else f"{parts[0]}/{parts[2]}"  # parts[1] is {name}
    return found["group"] or "", namespaced, resource


@cache
def client_method(attr: str) -> tuple[str, str, str, bool] | None:
    """(verb, group, resource, cluster-scoped) when `attr` is a request method of CoreV1Api/AppsV1Api."""
    name = CALL_VARIANT.sub("", attr)
    parsed = API_METHOD.fullmatch(name)
    owners = [cls for cls in API_CLASSES if callable(getattr(cls, name, None))]
    if parsed is None or not owners:
        return None
    assert len(owners) == 1, f"{name} is a method of several API classes"
    method, path = _request_line(owners[0], name)
    group, namespaced, resource = _parse_path(path)
    where = f"{owners[0].__name__}.{name} ({method} {path})"
    assert method == HTTP_METHODS[parsed["action"]], f"{where}: unexpected HTTP method"
    assert namespaced == bool(parsed["namespaced"]), f"{where}: scope does not match the method name"
    # The kind in the method name, pluralised, must be the resource of the URL (a cross-check of both).
    head, _, sub = resource.partition("/")
    kind = parsed["kind"] + ("_status" if parsed["status"] and sub != "status" else "")
    kind = kind.removesuffix("_for_all_namespaces")
    if sub and sub != "status":
        kind = kind.removesuffix(f"_{sub}")
    assert pluralise(kind) == head, f"{where}: kind {kind!r} does not pluralise to {head!r}"
    return VERBS[parsed["action"]], group, resource, not namespaced


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one function/class/module body, without those of nested functions and classes."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, SCOPES):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _callees(expr: ast.expr, assigned: dict[str, list[ast.expr]], seen: set[str]) -> Iterator[ast.Attribute]:
    """The attributes a function-valued expression can evaluate to (through local names, `a if c else b`)."""
    if isinstance(expr, ast.Attribute):
        yield expr
    elif isinstance(expr, ast.IfExp):
        yield from _callees(expr.body, assigned, seen)
        yield from _callees(expr.orelse, assigned, seen)
    elif isinstance(expr, ast.BoolOp):
        for value in expr.values:
            yield from _callees(value, assigned, seen)
    elif isinstance(expr, ast.Call) and expr.args:  # functools.partial(method, ...)
        func = expr.func
        if (isinstance(func, ast.Name) and func.id == "partial") or (
            isinstance(func, ast.Attribute) and func.attr == "partial"
        ):
            yield from _callees(expr.args[0], assigned, seen)
    elif isinstance(expr, ast.Name) and expr.id not in seen:
        seen.add(expr.id)
        for value in assigned.get(expr.id, []):
            yield from _callees(value, assigned, seen)


def _streamed(nodes: list[ast.AST]) -> set[int]:
    """ids of the attribute nodes passed (directly or via a local name) as the function of a `.stream(...)`
    call: kubernetes.watch.Watch().stream(list_x, ...) sends the list request with ?watch=true."""
    assigned: dict[str, list[ast.expr]] = {}
    for node in nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and isinstance(node.target, ast.Name):
            if node.value is not None:
                assigned.setdefault(node.target.id, []).append(node.value)
    streamed: set[int] = set()
    for node in nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "stream":
            funcs = node.args[:1] + [kw.value for kw in node.keywords if kw.arg == "func"]
            for func in funcs:
                streamed.update(id(attr) for attr in _callees(func, assigned, set()))
    return streamed


def derive_accesses(source: str, filename: str = "<snippet>") -> set[Access]:
    """Every (verb, group, resource, scope) the kubernetes client calls in `source` make."""
    tree = ast.parse(source, filename)
    found: set[Access] = set()
    for scope in [tree, *(node for node in ast.walk(tree) if isinstance(node, SCOPES))]:
        nodes = list(_own_nodes(scope))
        streamed = _streamed(nodes)
        for node in nodes:
            if isinstance(node, ast.Attribute) and (call := client_method(node.attr)):
                verb, group, resource, cluster_scoped = call
                if verb == "list" and id(node) in streamed:
                    verb = "watch"
                found.add(Access(verb, group, resource, cluster_scoped))
    return found


@cache
def code_accesses() -> frozenset[Access]:
    files = sorted(path for directory in CODE_DIRS for path in directory.rglob("*.py"))
    assert files, "no source files found under activities/ and workers/"
    found: set[Access] = set()
    for path in files:
        found |= derive_accesses(path.read_text(), str(path))
    return frozenset(found)


# ---- rendered manifests ----------------------------------------------------------------------------------


@cache
def _render(directory: str) -> tuple[dict[str, Any], ...]:
    kubectl = kubectl_binary()
    if kubectl is None:
        pytest.skip(NOT_BUILT)
    proc = subprocess.run(
        [kubectl, "kustomize", str(KUBE_DIR / directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed:\n{proc.stderr}"
    docs = tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)
    assert docs, f"kubectl kustomize {directory} rendered nothing"
    return docs


def render(directory: str) -> list[dict[str, Any]]:
    return copy.deepcopy(list(_render(directory)))


def of_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


def one(docs: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every rule, expanded; refuses wildcards and non-resource URLs."""
    out = set()
    for rule in role.get("rules") or []:
        where = f"{role['kind']} {role['metadata']['name']} rule {rule}"
        assert "nonResourceURLs" not in rule, f"{where}: non-resource URLs"
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in str(value) for value in rule.get(field) or []), (
                f"{where}: wildcard in {field}"
            )
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    out.add((group, resource, verb))
    return out


def as_grants(accesses: Iterable[Access]) -> set[tuple[str, str, str]]:
    return {(a.group, a.resource, a.verb) for a in accesses}


def env_names() -> set[str]:
    names = set()
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        assert isinstance(alias, AliasChoices), f"{info} has no environment name"
        names.add(str(alias.choices[0]))
    return names


def dockerfile_uid() -> int:
    found = re.search(r"--uid (\d+)", (ROOT / "deploy" / "Dockerfile").read_text())
    assert found, "deploy/Dockerfile creates no user with --uid"
    return int(found[1])


def metrics_port(docs: list[dict[str, Any]]) -> int:
    address = one(docs, "ConfigMap", SETTINGS_CM)["data"]["PEERSYNC_METRICS_ADDRESS"]
    return int(address.rpartition(":")[2])


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def declared_ports(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports") or [] if "name" in port}


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    numbers = {p["containerPort"] for p in container.get("ports") or []}
    number = declared_ports(container).get(port) if isinstance(port, str) else port
    assert number in numbers, f"container {container['name']}: port {port!r} is not a declared containerPort"
    return number


# ---- the derivation itself -------------------------------------------------------------------------------


def test_a_create_of_a_namespaced_configmap_is_create_configmaps() -> None:
    source = (
        "class K:\n    def f(self, ns, body):\n        self.core.create_namespaced_config_map(ns, body)\n"
    )
    assert derive_accesses(source) == {Access("create", "", "configmaps", False)}


def test_a_list_method_passed_to_watch_stream_is_watch_not_list() -> None:
    direct = "def f(self, ns):\n    Watch().stream(self.apps.list_namespaced_deployment, ns)\n"
    assert derive_accesses(direct) == {Access("watch", "apps", "deployments", False)}
    through_a_name = (
        "def f(self, ns, kind):\n"
        "    lister = (\n"
        "        self.apps.list_namespaced_deployment if kind == 'd' else self.apps.list_namespaced_stateful_set\n"
        "    )\n"
        "    for event in k8s_watch.Watch().stream(lister, ns, field_selector='metadata.name=x'):\n"
        "        pass\n"
    )
    assert derive_accesses(through_a_name) == {
        Access("watch", "apps", "deployments", False),
        Access("watch", "apps", "statefulsets", False),
    }
    called = "def f(self, ns):\n    return self.apps.list_namespaced_deployment(ns)\n"
    assert derive_accesses(called) == {Access("list", "apps", "deployments", False)}
    # A name streamed in one function says nothing about the same name in another.
    elsewhere = "def f(self):\n    lister = self.core.list_namespace\n    return lister()\n" + direct
    assert Access("list", "", "namespaces", True) in derive_accesses(elsewhere)


def test_other_attributes_are_not_kubernetes_calls() -> None:
    source = (
        "async def f(client, self):\n"
        "    await client.start_workflow(x)\n"
        "    async for wf in client.list_workflows(q):\n"
        "        pass\n"
        "    await client.create_schedule(i, s)\n"
        "    self.read_configmap(ns)\n"
        "    self.core.patch_everything(ns)\n"
        "    self.core.list_namespaced_config_map_count\n"
        "    Watch().stream(self.core.close)\n"
    )
    assert derive_accesses(source) == set()


def test_scope_group_and_subresources_come_from_the_client() -> None:
    source = (
        "def f(self):\n"
        "    self.core.list_namespace(label_selector='a=b')\n"
        "    self.core.read_namespace('x')\n"
        "    self.apps.read_namespaced_stateful_set('n', 'ns')\n"
        "    self.apps.replace_namespaced_deployment_status('n', 'ns', body)\n"
        "    self.core.delete_namespaced_config_map_with_http_info('n', 'ns')\n"
    )
    assert derive_accesses(source) == {
        Access("list", "", "namespaces", True),
        Access("get", "", "namespaces", True),
        Access("get", "apps", "statefulsets", False),
        Access("update", "apps", "deployments/status", False),
        Access("delete", "", "configmaps", False),
    }


def test_every_core_and_apps_method_resolves_consistently() -> None:
    names = [name for cls in API_CLASSES for name in dir(cls) if API_METHOD.fullmatch(name)]
    names = [name for name in names if not CALL_VARIANT.search(name)]
    assert len(names) > 100
    resolved = [client_method(name) for name in names]  # asserts path, HTTP method, scope and plural agree
    assert all(resolved)


def test_the_code_makes_kubernetes_calls() -> None:
    derived = code_accesses()
    assert derived, "no kubernetes client calls derived from activities/ and workers/"
    assert Access("update", "", "configmaps", False) in derived
    assert Access("watch", "apps", "deployments", False) in derived  # kube_ops.wait_rollout


# ---- RBAC ------------------------------------------------------------------------------------------------


@pytest.mark.kubectl
@pytest.mark.parametrize("directory", [BASE, EXAMPLE])
def test_the_cluster_roles_grant_exactly_what_the_code_calls(directory: str) -> None:
    docs = render(directory)
    assert not of_kind(docs, "Role"), "peersync's rules belong in its two ClusterRoles"
    roles = {role["metadata"]["name"]: role for role in of_kind(docs, "ClusterRole")}
    assert set(roles) == {NAMESPACES_ROLE, CONSUMER_ROLE}
    granted = set().union(*(grants(role) for role in roles.values()))
    needed = code_accesses()
    assert granted == as_grants(needed), (
        f"missing: {sorted(as_grants(needed) - granted)}; not called by the code: {sorted(granted - as_grants(needed))}"
    )
    cluster_scoped = as_grants(a for a in needed if a.cluster_scoped)
    assert grants(roles[NAMESPACES_ROLE]) == cluster_scoped, f"{NAMESPACES_ROLE} is for cluster-scoped calls"
    namespaced = as_grants(a for a in needed if not a.cluster_scoped)
    assert grants(roles[CONSUMER_ROLE]) == namespaced, f"{CONSUMER_ROLE} is for namespaced calls"


@pytest.mark.kubectl
@pytest.mark.parametrize("directory", [BASE, EXAMPLE])
def test_only_the_worker_is_bound_and_the_consumer_role_never_cluster_wide(directory: str) -> None:
    docs = render(directory)
    cluster_bindings = of_kind(docs, "ClusterRoleBinding")
    assert [b["metadata"]["name"] for b in cluster_bindings] == [NAMESPACES_ROLE]
    (binding,) = cluster_bindings
    assert binding["roleRef"] == {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": NAMESPACES_ROLE}
    assert binding["subjects"] == [WORKER_SUBJECT]
    for role_binding in of_kind(docs, "RoleBinding"):
        assert role_binding["metadata"]["name"] == CONSUMER_ROLE
        assert role_binding["metadata"]["namespace"] != NAMESPACE
        assert role_binding["roleRef"] == {
            "apiGroup": RBAC_GROUP,
            "kind": "ClusterRole",
            "name": CONSUMER_ROLE,
        }
    for any_binding in [*cluster_bindings, *of_kind(docs, "RoleBinding")]:
        assert any_binding["subjects"] == [WORKER_SUBJECT], f"{any_binding['metadata']['name']} binds others"
        assert WATCHER_SA not in str(any_binding["subjects"])
    assert all(b["roleRef"]["name"] != CONSUMER_ROLE for b in cluster_bindings)


@pytest.mark.kubectl
def test_the_consumer_namespace_directory_binds_the_worker_to_the_consumer_role() -> None:
    docs = render(CONSUMER)
    assert [(doc["kind"], doc["metadata"]["name"]) for doc in docs] == [("RoleBinding", CONSUMER_ROLE)]
    (binding,) = docs
    assert binding["metadata"]["namespace"] not in ("", NAMESPACE, "default")
    assert binding["roleRef"] == {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": CONSUMER_ROLE}
    assert binding["subjects"] == [WORKER_SUBJECT]


@pytest.mark.kubectl
def test_the_example_overlay_grants_one_consumer_namespace() -> None:
    docs = render(EXAMPLE)
    bindings = of_kind(docs, "RoleBinding")
    assert [(b["metadata"]["name"], b["metadata"]["namespace"]) for b in bindings] == [
        (CONSUMER_ROLE, "consumer-neutron")
    ]
    assert bindings[0]["subjects"] == [WORKER_SUBJECT]


# ---- settings and workloads ------------------------------------------------------------------------------


@pytest.mark.kubectl
@pytest.mark.parametrize("directory", [BASE, EXAMPLE])
def test_the_settings_are_peersync_settings_and_load(directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    names = env_names()
    assert "PEERSYNC_METRICS_ADDRESS" in names and "KUBECONFIG" in names
    data = one(render(directory), "ConfigMap", SETTINGS_CM)["data"]
    unknown = {key for key in data if key not in names and not key.startswith("TEMPORAL_")}
    assert not unknown, f"not settings of workers/settings.py: {sorted(unknown)}"
    assert "KUBECONFIG" not in data, "the worker must use its in-cluster service account"
    for name in names:
        monkeypatch.delenv(name, raising=False)
    for key, value in data.items():
        monkeypatch.setenv(key, str(value))
    settings = load_settings()
    assert settings.kubeconfig is None
    assert settings.metrics_address, "both processes serve /metrics on PEERSYNC_METRICS_ADDRESS"


@pytest.mark.kubectl
def test_the_example_overlay_sets_image_cluster_chain_and_temporal() -> None:
    base = one(render(BASE), "ConfigMap", SETTINGS_CM)["data"]
    example = one(render(EXAMPLE), "ConfigMap", SETTINGS_CM)["data"]
    for key in ("PEERSYNC_CLUSTER_ID", "PEERSYNC_CHAIN_RPC_URL", "PEERSYNC_CHAIN_REST_URL"):
        assert example[key] != base[key], f"the example overlay does not set {key}"
    assert example["TEMPORAL_ADDRESS"]
    for deployment in of_kind(render(EXAMPLE), "Deployment"):
        for container in pod_spec(deployment)["containers"]:
            assert container["image"] != "peersync:latest" and not container["image"].endswith(":latest")
    for deployment in of_kind(render(BASE), "Deployment"):
        assert {c["image"] for c in pod_spec(deployment)["containers"]} == {"peersync:latest"}


@pytest.mark.kubectl
@pytest.mark.parametrize("directory", [BASE, EXAMPLE])
def test_the_deployments(directory: str) -> None:
    docs = render(directory)
    names = env_names()
    port = metrics_port(docs)
    uid = dockerfile_uid()
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    assert set(deployments) == {WORKER_SA, WATCHER_SA}
    expected = {
        WORKER_SA: (["worker"], "/metrics", "/metrics"),
        WATCHER_SA: (["watch"], "/healthz", "/healthz"),
    }
    for name, deployment in deployments.items():
        assert deployment["metadata"]["namespace"] == NAMESPACE
        spec = pod_spec(deployment)
        args, ready_path, live_path = expected[name]
        assert spec["serviceAccountName"] == name
        assert spec["terminationGracePeriodSeconds"] > GRACEFUL_SHUTDOWN.total_seconds()
        volumes = {volume["name"]: volume for volume in spec.get("volumes") or []}
        pod_security = spec.get("securityContext") or {}
        (container,) = spec["containers"]
        assert container["args"] == args
        for env in container.get("env") or []:
            assert env["name"] in names or env["name"].startswith("TEMPORAL_"), f"{name}: env {env['name']}"
            assert env["name"] != "KUBECONFIG"
        for source in container.get("envFrom") or []:
            assert set(source) == {"configMapRef"}, f"{name}: envFrom {source}"
            assert source["configMapRef"]["name"] == SETTINGS_CM
        assert container.get("envFrom"), f"{name} does not read {SETTINGS_CM}"
        assert declared_ports(container).get("metrics") == port
        for probe_name, path in (("readinessProbe", ready_path), ("livenessProbe", live_path)):
            probe = container.get(probe_name)
            assert probe and "httpGet" in probe, f"{name}: no HTTP {probe_name}"
            assert probe["httpGet"]["path"] == path
            assert resolve_port(container, probe["httpGet"]["port"]) == port
        for kind in ("requests", "limits"):
            assert set(container.get("resources", {}).get(kind) or {}) >= {"cpu", "memory"}, f"{name}: {kind}"

        security = container.get("securityContext") or {}
        # The container's own securityContext wins over the pod's for the fields both have.
        effective = {**pod_security, **security}
        assert effective.get("runAsNonRoot") is True
        assert effective.get("runAsUser") == uid
        assert (effective.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
        assert security.get("readOnlyRootFilesystem") is True
        assert security.get("allowPrivilegeEscalation") is False
        assert security.get("privileged") is not True
        assert security.get("capabilities", {}).get("drop") == ["ALL"]
        assert not security.get("capabilities", {}).get("add")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
        assert all(volume in volumes for volume in mounts.values())
        assert "emptyDir" in volumes.get(mounts.get("/tmp"), {}), (
            f"{name}: no writable /tmp on a read-only root"
        )

        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        for other_name, other in deployments.items():
            if other_name != name:
                assert not selector.items() <= other["spec"]["template"]["metadata"]["labels"].items()

    watcher = pod_spec(deployments[WATCHER_SA])
    liveness = watcher["containers"][0]["livenessProbe"]
    tolerated = liveness["failureThreshold"] * liveness["periodSeconds"]
    assert tolerated >= 4 * BACKOFF_MAX, f"the watcher is restarted after {tolerated}s of chain outage"


@pytest.mark.kubectl
@pytest.mark.parametrize("directory", [BASE, EXAMPLE])
def test_the_watcher_has_no_token_and_the_worker_has_one(directory: str) -> None:
    docs = render(directory)
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(docs, "ServiceAccount")}
    assert set(accounts) == {WORKER_SA, WATCHER_SA}
    assert all(sa["metadata"]["namespace"] == NAMESPACE for sa in accounts.values())
    assert accounts[WATCHER_SA].get("automountServiceAccountToken") is False
    assert pod_spec(one(docs, "Deployment", WATCHER_SA)).get("automountServiceAccountToken") is False
    # The worker reads the in-cluster config from the mounted token.
    assert accounts[WORKER_SA].get("automountServiceAccountToken") is not False
    assert pod_spec(one(docs, "Deployment", WORKER_SA)).get("automountServiceAccountToken") is not False


@pytest.mark.kubectl
@pytest.mark.parametrize("directory", [BASE, EXAMPLE])
def test_the_metrics_service_selects_both_and_targets_their_metrics_port(directory: str) -> None:
    docs = render(directory)
    port = metrics_port(docs)
    service = one(docs, "Service", METRICS_SERVICE)
    assert service["metadata"]["namespace"] == NAMESPACE
    selector = service["spec"]["selector"]
    assert selector
    (service_port,) = service["spec"]["ports"]
    assert service_port["name"] == "metrics"
    target = service_port["targetPort"]
    assert isinstance(target, str), "targetPort names the containers' port"
    for name in (WORKER_SA, WATCHER_SA):
        deployment = one(docs, "Deployment", name)
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        (container,) = pod_spec(deployment)["containers"]
        assert target in declared_ports(container), f"{name} declares no port {target!r}"
        assert resolve_port(container, target) == port


# ---- the devnet runs the worker under these same objects ------------------------------------------------

RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding")


def _rbac_essence(docs: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What authorization depends on (labels aside): kind, name, namespace, rules, roleRef, subjects."""
    return sorted(
        (
            d["kind"],
            d["metadata"]["name"],
            d["metadata"].get("namespace"),
            repr(d.get("rules")),
            repr(d.get("roleRef")),
            repr(d.get("subjects")),
            d.get("automountServiceAccountToken"),
        )
        for d in docs
        if d["kind"] in RBAC_KINDS
    )


def test_the_devnet_loads_exactly_what_kustomize_renders() -> None:
    """devnet.shipped_rbac reads the files without kustomize; it must agree with it, or the e2e tests
    (which run the worker under the devnet's copy) would prove nothing about the shipped manifests."""
    assert _rbac_essence(shipped_rbac.base_objects()) == _rbac_essence(render(BASE))
    example = [d for d in render(EXAMPLE) if d["kind"] == "RoleBinding"]
    namespaces = [d["metadata"]["namespace"] for d in example]
    assert namespaces, "the example overlay binds no consumer namespace"
    assert _rbac_essence(shipped_rbac.consumer_binding(ns) for ns in namespaces) == _rbac_essence(example)
