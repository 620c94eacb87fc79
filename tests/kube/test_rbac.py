"""Bearer-token authentication and RBAC authorization (KubeEmulator(rbac=True)), through the official client,
kubectl and raw HTTP: the Status bodies, the verbs derived from requests, and rules read live from the store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from devnet.kube import manifests
from devnet.kube.errors import ApiError
from devnet.kube.requestinfo import Attributes, request_attributes
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import raw_request
from devnet.loop_thread import serve_in_thread

HOME, BOUND, OTHER = "peersync", "consumer-a", "consumer-b"
SA = "peersync-worker"
USER = f"system:serviceaccount:{HOME}:{SA}"
Clients = Callable[..., client.ApiClient]


@pytest.fixture
def cluster() -> Iterator[KubeEmulator]:
    """An RBAC-enforcing emulator with the worker's ServiceAccount and two consumer namespaces."""
    emu = KubeEmulator(step_seconds=0, rbac=True)
    with serve_in_thread(emu):
        for name in (HOME, BOUND, OTHER):
            emu.apply(manifests.namespace(name, {"peersync.io/cluster": "alice"}))
        emu.apply(manifests.service_account(SA, HOME))
        for ns in (BOUND, OTHER):
            emu.apply(manifests.configmap("peers", ns, {"p": "a"}))
            emu.apply(manifests.configmap("other", ns, {"p": "a"}))
            emu.apply(manifests.deployment("node", ns, 1))
        yield emu


@pytest.fixture
def clients(cluster: KubeEmulator, tmp_path: Path) -> Iterator[Clients]:
    """make(token=None) -> an ApiClient loaded from a kubeconfig the emulator wrote (None: the admin)."""
    with ExitStack() as stack:
        made = iter(range(1000))

        def make(token: str | None = None) -> client.ApiClient:
            path = cluster.write_kubeconfig(tmp_path / f"kubeconfig-{next(made)}", token=token)
            configuration = client.Configuration()
            config.load_kube_config(config_file=str(path), client_configuration=configuration)
            return stack.enter_context(client.ApiClient(configuration))

        yield make


@pytest.fixture
def worker(cluster: KubeEmulator, clients: Clients) -> client.ApiClient:
    return clients(cluster.issue_token(HOME, SA))


def _grant(emu: KubeEmulator, role: str, rules: list[dict[str, Any]], namespace: str | None = BOUND) -> None:
    """A ClusterRole bound to the worker in `namespace` by a RoleBinding, or everywhere (None) by a
    ClusterRoleBinding."""
    emu.apply(manifests.role(role, None, rules))
    subject = manifests.service_account_subject(SA, HOME)
    emu.apply(manifests.binding(f"{role}-binding", namespace, "ClusterRole", role, [subject]))


def _denied(call: Callable[[], Any], status: int = 403) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == status, caught.value.body
    body: dict[str, Any] = json.loads(caught.value.body)
    return body


def _forbidden(message: str, details: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


CONFIGMAP_RULE = manifests.rule([""], ["configmaps"], ["get", "update"])


def test_a_role_bound_in_one_namespace_allows_there_and_forbids_elsewhere(
    cluster: KubeEmulator, worker: client.ApiClient
) -> None:
    _grant(cluster, "peersync-consumer", [CONFIGMAP_RULE])
    core = client.CoreV1Api(worker)
    cm = core.read_namespaced_config_map("peers", BOUND)
    cm.data = {"p": "b"}
    assert core.replace_namespaced_config_map("peers", BOUND, cm).data == {"p": "b"}

    assert _denied(lambda: core.read_namespaced_config_map("peers", OTHER)) == _forbidden(
        f'configmaps "peers" is forbidden: User "{USER}" cannot get resource "configmaps" in API group "" '
        f'in the namespace "{OTHER}"',
        {"name": "peers", "kind": "configmaps"},
    )
    body = _denied(lambda: core.delete_namespaced_config_map("peers", BOUND))
    assert body["message"].endswith(
        f'cannot delete resource "configmaps" in API group "" in the namespace "{BOUND}"'
    )
    assert _denied(lambda: core.list_namespaced_config_map(BOUND))["message"] == (
        f'configmaps is forbidden: User "{USER}" cannot list resource "configmaps" in API group "" '
        f'in the namespace "{BOUND}"'
    )
    assert cluster.get("cm", OTHER, "peers")["data"] == {"p": "a"}  # type: ignore[index]
    denial = cluster.denials()[-1]
    assert (denial["user"], denial["verb"], denial["namespace"], denial["code"]) == (USER, "list", BOUND, 403)
    stats = raw_request(f"{cluster.url}/devnet/stats").json()
    assert stats["denied"] == cluster.requests_denied == 3


def test_list_get_and_watch_are_distinct_verbs(cluster: KubeEmulator, worker: client.ApiClient) -> None:
    _grant(cluster, "watch-only", [manifests.rule(["apps"], ["deployments"], ["watch"])])
    apps = client.AppsV1Api(worker)
    w = watch.Watch()
    stream = w.stream(
        apps.list_namespaced_deployment, BOUND, field_selector="metadata.name=node", timeout_seconds=5
    )
    event = next(stream)
    w.stop()
    assert event["type"] == "ADDED" and event["object"].metadata.name == "node"

    body = _denied(lambda: apps.list_namespaced_deployment(BOUND))
    assert body["message"] == (
        f'deployments.apps is forbidden: User "{USER}" cannot list resource "deployments" '
        f'in API group "apps" in the namespace "{BOUND}"'
    )
    assert body["details"] == {"group": "apps", "kind": "deployments"}
    body = _denied(lambda: apps.read_namespaced_deployment("node", BOUND))
    assert (
        body["message"].startswith('deployments.apps "node" is forbidden:')
        and "cannot get" in body["message"]
    )


def test_resource_names_restrict_get_and_a_name_pinned_list_or_watch(
    cluster: KubeEmulator, worker: client.ApiClient
) -> None:
    _grant(
        cluster,
        "only-peers",
        [manifests.rule([""], ["configmaps"], ["get", "list", "watch"], names=["peers"])],
    )
    core = client.CoreV1Api(worker)
    assert core.read_namespaced_config_map("peers", BOUND).data == {"p": "a"}
    assert _denied(lambda: core.read_namespaced_config_map("other", BOUND))["details"]["name"] == "other"

    pinned = core.list_namespaced_config_map(BOUND, field_selector="metadata.name=peers")
    assert [cm.metadata.name for cm in pinned.items] == ["peers"]
    assert "cannot list" in _denied(lambda: core.list_namespaced_config_map(BOUND))["message"]
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map, BOUND, field_selector="metadata.name=peers", timeout_seconds=5
    )
    assert next(stream)["object"].metadata.name == "peers"
    w.stop()
    body = _denied(
        lambda: core.list_namespaced_config_map(BOUND, field_selector="metadata.name=other", watch=True)
    )
    assert body["message"].startswith('configmaps "other" is forbidden') and "cannot watch" in body["message"]


def test_only_a_cluster_role_binding_grants_cluster_scoped_resources(
    cluster: KubeEmulator, worker: client.ApiClient
) -> None:
    rules = [manifests.rule([""], ["namespaces"], ["get", "list", "watch"])]
    _grant(cluster, "peersync-namespaces", rules)  # a RoleBinding in BOUND only
    core = client.CoreV1Api(worker)
    assert _denied(lambda: core.list_namespace(label_selector="peersync.io/cluster=alice"))["message"] == (
        f'namespaces is forbidden: User "{USER}" cannot list resource "namespaces" in API group "" '
        "at the cluster scope"
    )
    # As in a real cluster, reading the Namespace object is a request *in* that namespace.
    assert core.read_namespace(BOUND).metadata.name == BOUND
    assert "cannot get" in _denied(lambda: core.read_namespace(OTHER))["message"]

    _grant(cluster, "peersync-namespaces", rules, namespace=None)  # now a ClusterRoleBinding too
    names = [ns.metadata.name for ns in core.list_namespace(label_selector="peersync.io/cluster=alice").items]
    assert names == [BOUND, OTHER, HOME]
    assert core.read_namespace(OTHER).metadata.name == OTHER


def test_subresources_are_authorized_on_their_own(cluster: KubeEmulator, worker: client.ApiClient) -> None:
    _grant(cluster, "deployer", [manifests.rule(["apps"], ["deployments"], ["get", "patch"])])
    apps = client.AppsV1Api(worker)
    apps.patch_namespaced_deployment("node", BOUND, {"metadata": {"annotations": {"a": "b"}}})
    body = _denied(lambda: apps.patch_namespaced_deployment_scale("node", BOUND, {"spec": {"replicas": 2}}))
    assert body["message"] == (
        f'deployments.apps "node" is forbidden: User "{USER}" cannot patch resource "deployments/scale" '
        f'in API group "apps" in the namespace "{BOUND}"'
    )
    assert body["details"] == {"name": "node", "group": "apps", "kind": "deployments"}
    rules = [manifests.rule(["apps"], ["deployments", "*/scale"], ["get", "patch"])]
    cluster.apply(manifests.role("deployer", None, rules))
    assert apps.patch_namespaced_deployment_scale("node", BOUND, {"spec": {"replicas": 2}}).spec.replicas == 2


def test_changes_to_roles_and_bindings_apply_to_the_next_request(
    cluster: KubeEmulator, worker: client.ApiClient
) -> None:
    _grant(cluster, "peersync-consumer", [CONFIGMAP_RULE])
    core = client.CoreV1Api(worker)
    cm = core.read_namespaced_config_map("peers", BOUND)
    cluster.apply(manifests.role("peersync-consumer", None, [manifests.rule([""], ["configmaps"], ["get"])]))
    assert (
        "cannot update" in _denied(lambda: core.replace_namespaced_config_map("peers", BOUND, cm))["message"]
    )
    cluster.apply(manifests.role("peersync-consumer", None, [manifests.rule([""], ["*"], ["*"])]))
    core.replace_namespaced_config_map("peers", BOUND, cm)

    assert cluster.delete("clusterrole", "", "peersync-consumer")
    body = _denied(lambda: core.read_namespaced_config_map("peers", BOUND))
    assert body["message"].endswith(
        f'in the namespace "{BOUND}": '
        'RBAC: clusterrole.rbac.authorization.k8s.io "peersync-consumer" not found'
    )
    _grant(cluster, "peersync-consumer", [CONFIGMAP_RULE])
    assert cluster.delete("rolebinding", BOUND, "peersync-consumer-binding")
    _denied(lambda: core.read_namespaced_config_map("peers", BOUND))


def test_subjects_by_group_user_and_a_namespace_local_service_account(
    cluster: KubeEmulator, worker: client.ApiClient
) -> None:
    cluster.apply(manifests.role("reader", BOUND, [manifests.rule([""], ["configmaps"], ["get"])]))
    core = client.CoreV1Api(worker)
    subjects = [
        [{"kind": "Group", "name": f"system:serviceaccounts:{HOME}"}],
        [{"kind": "User", "name": USER}],
        [{"kind": "ServiceAccount", "name": SA}],  # no namespace: the binding's own (BOUND), not HOME
    ]
    for i, subject in enumerate(subjects):
        cluster.apply(manifests.binding("reader", BOUND, "Role", "reader", subject))
        if i < 2:
            assert core.read_namespaced_config_map("peers", BOUND).metadata.name == "peers"
        else:
            _denied(lambda: core.read_namespaced_config_map("peers", BOUND))
        cluster.delete("rolebinding", BOUND, "reader")
    cluster.apply(
        manifests.binding(
            "reader", BOUND, "Role", "reader", [{"kind": "Group", "name": "system:authenticated"}]
        )
    )
    assert core.read_namespaced_config_map("peers", BOUND).metadata.name == "peers"
    _denied(
        lambda: core.read_namespaced_config_map("peers", OTHER)
    )  # a Role only ever applies in its namespace


def test_no_token_is_the_admin_and_an_unknown_token_is_401(cluster: KubeEmulator, clients: Clients) -> None:
    admin = client.CoreV1Api(clients())
    assert [ns.metadata.name for ns in admin.list_namespace().items] == [BOUND, OTHER, HOME]
    admin.create_namespaced_config_map(OTHER, manifests.configmap("new", OTHER, {}))

    expected = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert _denied(lambda: client.CoreV1Api(clients("not-a-token")).list_namespace(), 401) == expected
    raw = raw_request(f"{cluster.url}/version", headers={"Authorization": "Basic YTpi"})
    assert (raw.status, raw.json()) == (401, expected)

    token = cluster.issue_token(HOME, SA)
    assert cluster.revoke_token(token)
    assert _denied(lambda: client.CoreV1Api(clients(token)).list_namespace(), 401)["reason"] == "Unauthorized"
    token = cluster.issue_token(HOME, SA)
    cluster.delete("sa", HOME, SA)  # like bound tokens, a token dies with its ServiceAccount
    _denied(lambda: client.CoreV1Api(clients(token)).list_namespace(), 401)
    with pytest.raises(ApiError) as missing:
        cluster.issue_token(HOME, SA)
    assert missing.value.code == 404
    assert raw_request(f"{cluster.url}/devnet/stats").status == 200  # the admin API needs no credentials


def test_discovery_is_open_to_every_authenticated_user(cluster: KubeEmulator) -> None:
    auth = {"Authorization": f"Bearer {cluster.issue_token(HOME, SA)}"}
    for path in ("/api", "/api/v1", "/apis", "/apis/rbac.authorization.k8s.io/v1", "/version", "/openapi/v3"):
        assert raw_request(f"{cluster.url}{path}", headers=auth).status == 200, path
    other = raw_request(f"{cluster.url}/metrics", headers=auth)
    assert other.status == 403
    assert other.json()["message"] == f'forbidden: User "{USER}" cannot get path "/metrics"'
    # An unserved resource is still a resource request: 403 for the worker, 404 for the admin.
    secrets = raw_request(f"{cluster.url}/api/v1/namespaces/{BOUND}/secrets", headers=auth)
    assert secrets.status == 403 and secrets.json()["details"] == {"kind": "secrets"}
    assert raw_request(f"{cluster.url}/api/v1/namespaces/{BOUND}/secrets").status == 404


def test_rbac_off_ignores_credentials() -> None:
    emu = KubeEmulator(step_seconds=0)
    with serve_in_thread(emu):
        emu.apply(manifests.namespace(BOUND))
        headers = {"Authorization": "Bearer whatever"}
        listed = raw_request(f"{emu.url}/api/v1/namespaces/{BOUND}/configmaps", headers=headers)
        assert listed.status == 200 and emu.rbac is False and emu.requests_denied == 0 and emu.denials() == []
        assert raw_request(f"{emu.url}/devnet/stats").json()["denied"] == 0


def test_rbac_objects_are_validated(cluster: KubeEmulator, clients: Clients) -> None:
    rbac = client.RbacAuthorizationV1Api(clients())
    body = manifests.binding("b", BOUND, "ClusterRole", "system:some-role", [{"kind": "User", "name": "u"}])
    created = rbac.create_namespaced_role_binding(BOUND, body)
    assert (
        created.role_ref.name == "system:some-role"
        and created.subjects[0].api_group == "rbac.authorization.k8s.io"
    )
    created.role_ref.name = "another"
    body = _denied(lambda: rbac.replace_namespaced_role_binding("b", BOUND, created), 422)
    assert "roleRef: Invalid value" in body["message"] and body["message"].endswith("cannot change roleRef")

    missing_ref = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "c"},
    }
    response = raw_request(
        f"{cluster.url}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "POST", missing_ref
    )
    causes = response.json()["details"]["causes"]  # the v37 client refuses to send a binding without roleRef
    assert response.status == 422
    assert {c["field"] for c in causes} == {"roleRef.apiGroup", "roleRef.kind", "roleRef.name"}
    bad = manifests.binding("c", None, "Role", "r", [{"kind": "ServiceAccount", "name": SA}])
    causes = _denied(lambda: rbac.create_cluster_role_binding(bad), 422)["details"]["causes"]
    assert {c["field"] for c in causes} == {"roleRef.kind", "subjects[0].namespace"}

    role = manifests.role(
        "r",
        BOUND,
        [
            {"apiGroups": [""], "resources": ["pods"], "verbs": []},
            {"nonResourceURLs": ["/x"], "verbs": ["get"]},
        ],
    )
    causes = _denied(lambda: rbac.create_namespaced_role(BOUND, role), 422)["details"]["causes"]
    assert [c["field"] for c in causes] == ["rules[0].verbs", "rules[1].nonResourceURLs"]
    cluster_role = manifests.role("system:r", None, [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}])
    assert rbac.create_cluster_role(cluster_role).metadata.name == "system:r"
    assert client.CoreV1Api(clients()).read_namespaced_service_account(SA, HOME).metadata.name == SA


def test_the_new_types_are_served_like_the_others(cluster: KubeEmulator, clients: Clients) -> None:
    rbac = client.RbacAuthorizationV1Api(clients())
    core = client.CoreV1Api(clients())
    _grant(cluster, "peersync-consumer", [CONFIGMAP_RULE])
    _grant(cluster, "peersync-namespaces", [manifests.rule([""], ["namespaces"], ["list"])], namespace=None)
    cluster.apply(manifests.role("reader", BOUND, [manifests.rule([""], ["pods"], ["get"])]))
    assert [r.metadata.name for r in rbac.list_cluster_role().items] == [
        "peersync-consumer",
        "peersync-namespaces",
    ]
    crb = rbac.read_cluster_role_binding("peersync-namespaces-binding")
    assert (crb.role_ref.kind, crb.subjects[0].namespace) == ("ClusterRole", HOME)
    bindings = rbac.list_role_binding_for_all_namespaces().items
    assert [(b.metadata.namespace, b.metadata.name) for b in bindings] == [
        (BOUND, "peersync-consumer-binding")
    ]
    role = rbac.read_namespaced_role("reader", BOUND)
    assert role.rules[0].verbs == ["get"] and role.kind == "Role"
    rbac.patch_namespaced_role(
        "reader", BOUND, {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}
    )
    assert cluster.get("role", BOUND, "reader")["rules"][0]["verbs"] == ["*"]  # type: ignore[index]
    rbac.delete_namespaced_role("reader", BOUND)
    assert rbac.list_namespaced_role(BOUND).items == []
    accounts = core.list_namespaced_service_account(HOME, label_selector="")
    assert [a.metadata.name for a in accounts.items] == [SA]
    core.create_namespaced_service_account(BOUND, manifests.service_account("other", BOUND))
    core.delete_namespace(BOUND)  # a namespace takes its RBAC objects and service accounts along
    assert cluster.list("rolebindings") == [] and cluster.list("sa", BOUND) == []


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/ns/configmaps/x", {}, ("get", "", "configmaps", "", "ns", "x")),
        ("GET", "/api/v1/namespaces/ns/configmaps", {}, ("list", "", "configmaps", "", "ns", "")),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            {"watch": "1"},
            ("watch", "", "configmaps", "", "ns", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            {"watch": "true", "fieldSelector": "metadata.name=x"},
            ("watch", "", "configmaps", "", "ns", "x"),
        ),
        ("GET", "/api/v1/watch/namespaces/ns/configmaps/x", {}, ("watch", "", "configmaps", "", "ns", "x")),
        ("GET", "/api/v1/configmaps", {}, ("list", "", "configmaps", "", "", "")),
        ("POST", "/api/v1/namespaces/ns/configmaps", {}, ("create", "", "configmaps", "", "ns", "")),
        (
            "PUT",
            "/apis/apps/v1/namespaces/ns/deployments/d/status",
            {},
            ("update", "apps", "deployments", "status", "ns", "d"),
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/ns/deployments/d/scale",
            {},
            ("patch", "apps", "deployments", "scale", "ns", "d"),
        ),
        ("DELETE", "/api/v1/namespaces/ns/configmaps/x", {}, ("delete", "", "configmaps", "", "ns", "x")),
        (
            "DELETE",
            "/api/v1/namespaces/ns/configmaps",
            {},
            ("deletecollection", "", "configmaps", "", "ns", ""),
        ),
        ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "namespaces", "", "ns", "ns")),
        ("PUT", "/api/v1/namespaces/ns/status", {}, ("update", "", "namespaces", "status", "ns", "ns")),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", "", "")),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/a:b",
            {},
            ("get", "rbac.authorization.k8s.io", "clusterroles", "", "", "a:b"),
        ),
    ],
)
def test_request_attributes(method: str, path: str, query: dict[str, str], expected: tuple[str, ...]) -> None:
    attrs = request_attributes(method, path, query)
    assert attrs.resource_request
    assert (
        attrs.verb,
        attrs.api_group,
        attrs.resource,
        attrs.subresource,
        attrs.namespace,
        attrs.name,
    ) == expected


def test_non_resource_request_attributes() -> None:
    for path in ("/api", "/api/v1", "/apis/apps/v1", "/version", "/healthz"):
        assert request_attributes("GET", path, {}) == Attributes(
            verb="get", path=path, resource_request=False
        )


def test_a_watch_path_is_served_and_authorized_as_watch(cluster: KubeEmulator) -> None:
    _grant(cluster, "watch-peers", [manifests.rule([""], ["configmaps"], ["watch"], names=["peers"])])
    auth = {"Authorization": f"Bearer {cluster.issue_token(HOME, SA)}"}
    url = f"{cluster.url}/api/v1/watch/namespaces/{BOUND}/configmaps"
    single = raw_request(f"{url}/peers?timeoutSeconds=1", headers=auth)
    assert single.status == 200
    events = [json.loads(line) for line in single.body.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "peers")]
    assert raw_request(f"{url}?timeoutSeconds=1", headers=auth).status == 403
    collection = raw_request(f"{cluster.url}/api/v1/namespaces/{BOUND}/configmaps", "DELETE", headers=auth)
    assert "cannot deletecollection" in collection.json()["message"]


@pytest.fixture
def tls_cluster() -> Iterator[KubeEmulator]:
    """kubectl sends a kubeconfig's token only over https: an RBAC emulator serving TLS."""
    emu = KubeEmulator(step_seconds=0, rbac=True, tls=True)
    with serve_in_thread(emu):
        for name in (HOME, BOUND, OTHER):
            emu.apply(manifests.namespace(name))
        emu.apply(manifests.configmap("peers", BOUND, {"p": "a"}))
        emu.apply(manifests.configmap("peers", OTHER, {"p": "a"}))
        yield emu


@pytest.mark.kubectl
def test_kubectl_applies_rbac_manifests_and_prints_forbidden(
    tls_cluster: KubeEmulator, tmp_path: Path
) -> None:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")

    def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [binary, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=40, check=False)

    cluster = tls_cluster
    assert cluster.url.startswith("https://")
    admin = cluster.write_kubeconfig(tmp_path / "admin")
    documents = [
        manifests.service_account(SA, HOME),
        manifests.role("peersync-consumer", None, [CONFIGMAP_RULE]),
        manifests.binding(
            "peersync-consumer",
            BOUND,
            "ClusterRole",
            "peersync-consumer",
            [manifests.service_account_subject(SA, HOME)],
        ),
    ]
    applied = kubectl(admin, "apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    assert applied.returncode == 0, applied.stderr
    assert "clusterrole.rbac.authorization.k8s.io/peersync-consumer created" in applied.stdout
    table = kubectl(admin, "get", "rolebindings", "-n", BOUND).stdout.splitlines()
    assert table[0].split() == ["NAME", "ROLE", "AGE"]
    assert table[1].split()[:2] == ["peersync-consumer", "ClusterRole/peersync-consumer"]
    assert kubectl(admin, "get", "sa", "-n", HOME, "-o", "name").stdout.split() == [f"serviceaccount/{SA}"]

    worker = cluster.write_kubeconfig(tmp_path / "worker", token=cluster.issue_token(HOME, SA))
    got = kubectl(worker, "get", "cm", "peers", "-n", BOUND, "-o", "jsonpath={.data.p}")
    assert (got.returncode, got.stdout) == (0, "a"), got.stderr
    refused = kubectl(worker, "get", "cm", "peers", "-n", OTHER)
    assert refused.returncode == 1
    assert (
        f'Error from server (Forbidden): configmaps "peers" is forbidden: User "{USER}" cannot get resource '
        f'"configmaps" in API group "" in the namespace "{OTHER}"'
    ) in refused.stderr
    refused = kubectl(worker, "get", "ns")
    assert 'cannot list resource "namespaces" in API group "" at the cluster scope' in refused.stderr
    # the python client trusts the same kubeconfig (certificate-authority-data)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(worker), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        assert client.CoreV1Api(api).read_namespaced_config_map("peers", BOUND).data == {"p": "a"}
    assert raw_request(f"{cluster.url}/devnet/stats").json()["denied"] == 2
