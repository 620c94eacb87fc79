"""Bearer-token authentication and RBAC authorization (KubeEmulator(rbac=True)), through the official client,
kubectl and raw HTTP: the Status bodies, the verbs derived from requests, rules read live from the store,
the self-subject reviews (`kubectl auth can-i`) and impersonation (`--as`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from devnet import shipped_rbac
from devnet.kube import manifests
from devnet.kube.errors import ApiError
from devnet.kube.requestinfo import Attributes, request_attributes
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import raw_request
from devnet.loop_thread import serve_in_thread
from devnet.real.binaries import NOT_BUILT, kubectl_binary

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


def _shipped(emu: KubeEmulator) -> None:
    """deploy/kubernetes as the operator guide applies it: the base, and the consumer RoleBinding in BOUND."""
    for obj in shipped_rbac.base_objects():
        emu.apply(obj)
    emu.apply(shipped_rbac.consumer_binding(BOUND))


def _can_i(api: client.ApiClient, verb: str, resource: str, namespace: str = "", group: str = "") -> Any:
    attributes = {"verb": verb, "resource": resource, "namespace": namespace, "group": group}
    review = {"spec": {"resourceAttributes": attributes}}
    return client.AuthorizationV1Api(api).create_self_subject_access_review(review).status


def test_self_subject_access_reviews_answer_for_the_shipped_rbac(
    cluster: KubeEmulator, worker: client.ApiClient, clients: Clients
) -> None:
    _shipped(cluster)
    allowed = _can_i(worker, "update", "configmaps", BOUND)
    assert (allowed.allowed, allowed.reason) == (
        True,
        f'RBAC: allowed by RoleBinding "peersync-consumer/{BOUND}" of ClusterRole "peersync-consumer" '
        f'to ServiceAccount "{SA}/{HOME}"',
    )
    assert _can_i(worker, "list", "namespaces").reason == (
        f'RBAC: allowed by ClusterRoleBinding "peersync-namespaces" of ClusterRole "peersync-namespaces" '
        f'to ServiceAccount "{SA}/{HOME}"'
    )
    assert _can_i(worker, "patch", "statefulsets", BOUND, "apps").allowed is True
    for verb, resource, namespace in [("update", "configmaps", OTHER), ("delete", "configmaps", BOUND)]:
        denied = _can_i(worker, verb, resource, namespace)
        assert (denied.allowed, denied.reason) == (False, None)
    assert (_can_i(clients(), "create", "namespaces").allowed, cluster.requests_denied) == (True, 0)
    # a binding to a missing role shows in the reason, as in the apiserver's 403s
    cluster.apply(
        manifests.binding(
            "broken", OTHER, "ClusterRole", "gone", [manifests.service_account_subject(SA, HOME)]
        )
    )
    broken = _can_i(worker, "get", "configmaps", OTHER)
    assert (broken.allowed, broken.reason) == (
        False,
        'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    )

    rules = client.AuthorizationV1Api(worker).create_self_subject_rules_review({"spec": {"namespace": BOUND}})
    granted = {
        (tuple(r.api_groups or []), tuple(r.resources), tuple(r.verbs)) for r in rules.status.resource_rules
    }
    assert {(("",), ("configmaps",), ("get", "update")), (("",), ("namespaces",), ("get", "list"))} <= granted
    assert rules.status.incomplete is False and not any("secrets" in g[1] for g in granted)
    url = f"{cluster.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    empty = raw_request(url, "POST", {"spec": {}})
    assert (empty.status, empty.json()["reason"]) == (422, "Invalid")
    assert raw_request(url).status == 405


def test_impersonation_needs_the_impersonate_verb(cluster: KubeEmulator) -> None:
    _shipped(cluster)
    cluster.apply(manifests.service_account("reader", HOME))
    auth = {"Authorization": f"Bearer {cluster.issue_token(HOME, SA)}"}
    url = f"{cluster.url}/api/v1/namespaces/{BOUND}/configmaps/peers"
    as_reader = {**auth, "Impersonate-User": f"system:serviceaccount:{HOME}:reader"}
    refused = raw_request(url, headers=as_reader)
    assert refused.status == 403
    assert refused.json() == _forbidden(
        f'serviceaccounts "reader" is forbidden: User "{USER}" cannot impersonate resource "serviceaccounts" '
        f'in API group "" in the namespace "{HOME}"',
        {"name": "reader", "kind": "serviceaccounts"},
    )
    denial = cluster.denials()[-1]
    assert (denial["verb"], denial["resource"], denial["name"], denial["namespace"]) == (
        "impersonate",
        "serviceaccounts",
        "reader",
        HOME,
    )
    refused = raw_request(url, headers={**auth, "Impersonate-User": "alice"})
    assert refused.json()["message"] == (
        f'users "alice" is forbidden: User "{USER}" cannot impersonate resource "users" in API group "" '
        "at the cluster scope"
    )
    # the admin may; the request then runs as the impersonated ServiceAccount, with its rights only
    assert raw_request(url, headers={"Impersonate-User": USER}).status == 200
    as_other = raw_request(url.replace(BOUND, OTHER), headers={"Impersonate-User": USER})
    assert as_other.status == 403 and f'User "{USER}" cannot get' in as_other.json()["message"]
    assert raw_request(url, headers={"Impersonate-Group": "devs"}).status == 500  # a group needs a user
    # granting impersonate on one ServiceAccount lets the worker act as it, and as nobody else
    impersonator = manifests.rule([""], ["serviceaccounts"], ["impersonate"], names=["reader"])
    _grant(cluster, "impersonator", [impersonator], namespace=None)
    as_reader_denied = raw_request(url, headers=as_reader)
    assert as_reader_denied.json()["message"] == (
        f'configmaps "peers" is forbidden: User "system:serviceaccount:{HOME}:reader" cannot get resource '
        f'"configmaps" in API group "" in the namespace "{BOUND}"'
    )
    groups = raw_request(
        f"{cluster.url}/apis/authentication.k8s.io/v1/selfsubjectreviews", "POST", {}, headers=as_reader
    ).json()["status"]["userInfo"]["groups"]
    assert groups == ["system:serviceaccounts", f"system:serviceaccounts:{HOME}", "system:authenticated"]
    with_group = {**as_reader, "Impersonate-Group": "system:masters"}
    assert 'cannot impersonate resource "groups"' in raw_request(url, headers=with_group).json()["message"]


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
    binary = kubectl_binary()
    if binary is None:
        pytest.skip(NOT_BUILT)

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


@pytest.mark.kubectl
def test_kubectl_auth_can_i_with_a_service_account_token(tls_cluster: KubeEmulator, tmp_path: Path) -> None:
    binary = kubectl_binary()
    if binary is None:
        pytest.skip(NOT_BUILT)
    _shipped(tls_cluster)
    worker = tls_cluster.write_kubeconfig(tmp_path / "worker", token=tls_cluster.issue_token(HOME, SA))

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        command = [binary, "--kubeconfig", str(worker), "--cache-dir", str(tmp_path / "cache"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=40, check=False)

    yes = kubectl("auth", "can-i", "update", "configmaps", "-n", BOUND)
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes"), yes.stderr
    no = kubectl("auth", "can-i", "update", "configmaps", "-n", OTHER)
    assert (no.returncode, no.stdout.strip()) == (1, "no"), no.stderr
    refused = kubectl("auth", "can-i", "update", "configmaps", "-n", BOUND, f"--as={USER}")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'Error from server (Forbidden): serviceaccounts "{SA}" is forbidden: User "{USER}" cannot impersonate '
        f'resource "serviceaccounts" in API group "" in the namespace "{HOME}"'
    )
    created = kubectl("create", "configmap", "new", "--from-literal=a=b", "-n", BOUND)
    assert created.returncode == 1 and 'cannot create resource "configmaps"' in created.stderr
