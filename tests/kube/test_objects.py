"""CRUD, optimistic concurrency, selectors, patch types and error bodies, through the official v37 client."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException, ConflictException, NotFoundException
from kubernetes.utils import retry_on_conflict

from devnet.kube import manifests, protobuf
from devnet.kube.server import KubeEmulator
from devnet.kube.testing import raw_request

CONFLICT_MESSAGE = (
    'Operation cannot be fulfilled on configmaps "peers": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


def _body(error: ApiException) -> dict:
    return json.loads(error.body)


def test_configmap_create_read_list(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(
        namespace, manifests.configmap("peers", namespace, {"a": "1"})
    )
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    assert isinstance(created.metadata.resource_version, str)

    read = core.read_namespaced_config_map("peers", namespace)
    assert read.data == {"a": "1"}
    assert read.metadata.resource_version == created.metadata.resource_version

    listed = core.list_namespaced_config_map(namespace)
    assert [cm.metadata.name for cm in listed.items] == ["peers"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)


def test_resource_version_is_one_counter_bumped_by_every_write(
    core: client.CoreV1Api, namespace: str
) -> None:
    first = core.create_namespaced_config_map(namespace, manifests.configmap("a", namespace, {"k": "1"}))
    second = core.create_namespaced_config_map(namespace, manifests.configmap("b", namespace, {"k": "1"}))
    first.data = {"k": "2"}
    third = core.replace_namespaced_config_map("a", namespace, first)
    versions = [int(o.metadata.resource_version) for o in (first, second, third)]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_stale_replace_is_a_conflict_with_the_apiserver_body(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, manifests.configmap("peers", namespace, {"p": "a"}))
    mine = core.read_namespaced_config_map("peers", namespace)
    theirs = core.read_namespaced_config_map("peers", namespace)
    theirs.data = {"p": "theirs"}
    core.replace_namespaced_config_map("peers", namespace, theirs)

    mine.data = {"p": "mine"}
    with pytest.raises(ConflictException) as caught:
        core.replace_namespaced_config_map("peers", namespace, mine)
    body = _body(caught.value)
    assert caught.value.status == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": CONFLICT_MESSAGE,
        "reason": "Conflict",
        "details": {"name": "peers", "kind": "configmaps"},
        "code": 409,
    }
    assert core.read_namespaced_config_map("peers", namespace).data == {"p": "theirs"}


def test_apps_conflict_names_the_qualified_resource(
    apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace))
    stale = apps.read_namespaced_deployment("node", namespace)
    apps.patch_namespaced_deployment("node", namespace, manifests.restart_patch("2026-01-01T00:00:00Z"))
    with pytest.raises(ConflictException) as caught:
        apps.replace_namespaced_deployment("node", namespace, stale)
    body = _body(caught.value)
    assert body["details"] == {"name": "node", "group": "apps", "kind": "deployments"}
    assert body["message"].startswith('Operation cannot be fulfilled on deployments.apps "node": ')


def test_replace_without_resource_version_is_unconditional(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, manifests.configmap("peers", namespace, {"p": "a"}))
    blind = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="peers"), data={"p": "blind"})
    replaced = core.replace_namespaced_config_map("peers", namespace, blind)
    assert replaced.data == {"p": "blind"}


def test_retry_on_conflict_wins_after_a_concurrent_write(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    core.create_namespaced_config_map(
        namespace, manifests.configmap("peers", namespace, {"persistent_peers": ""})
    )
    attempts = []

    def write() -> client.V1ConfigMap:
        cm = core.read_namespaced_config_map("peers", namespace)
        attempts.append(cm.metadata.resource_version)
        if len(attempts) == 1:  # someone else writes between our read and our replace
            emulator.apply(
                manifests.configmap("peers", namespace, {"persistent_peers": "other@1.2.3.4:26656"})
            )
        cm.data = {**(cm.data or {}), "persistent_peers": "id@5.6.7.8:26656"}
        return core.replace_namespaced_config_map("peers", namespace, cm)

    result = retry_on_conflict(write)
    assert len(attempts) == 2
    assert result.data == {"persistent_peers": "id@5.6.7.8:26656"}


def test_identical_replace_keeps_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(
        namespace, manifests.configmap("peers", namespace, {"p": "a"})
    )
    again = core.replace_namespaced_config_map("peers", namespace, created)
    assert again.metadata.resource_version == created.metadata.resource_version


def test_label_and_field_selectors(core: client.CoreV1Api, emulator: KubeEmulator, namespace: str) -> None:
    emulator.apply(manifests.namespace("consumer-b", {"peersync.io/cluster": "bob", "tier": "1"}))
    emulator.apply(manifests.namespace("consumer-c", {"peersync.io/cluster": "alice", "tier": "2"}))

    def names(**kwargs: str) -> list[str]:
        return [ns.metadata.name for ns in core.list_namespace(**kwargs).items]

    assert names(label_selector="peersync.io/cluster=alice") == ["consumer-a", "consumer-c"]
    assert names(label_selector="peersync.io/cluster==bob") == ["consumer-b"]
    assert names(label_selector="peersync.io/cluster=carol") == []
    assert names(label_selector="peersync.io/cluster!=alice") == ["consumer-b"]
    assert names(label_selector="tier in (1, 2)") == ["consumer-b", "consumer-c"]
    assert names(label_selector="tier notin (2)") == ["consumer-a", "consumer-b"]
    assert names(label_selector="tier") == ["consumer-b", "consumer-c"]
    assert names(label_selector="!tier") == ["consumer-a"]
    assert names(label_selector="peersync.io/cluster=alice,tier=2") == ["consumer-c"]
    assert names(label_selector="kubernetes.io/metadata.name=consumer-b") == ["consumer-b"]
    assert names(field_selector="metadata.name=consumer-c") == ["consumer-c"]
    assert names(field_selector="metadata.name!=consumer-c") == ["consumer-a", "consumer-b"]
    assert names(field_selector="metadata.name=nope") == []

    for ns in ("consumer-b", "consumer-c"):
        emulator.apply(manifests.configmap("peers", ns, {"p": ns}))
    everywhere = core.list_config_map_for_all_namespaces(field_selector="metadata.name=peers")
    assert [(cm.metadata.namespace, cm.metadata.name) for cm in everywhere.items] == [
        ("consumer-b", "peers"),
        ("consumer-c", "peers"),
    ]
    only_b = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=consumer-b")
    assert [cm.metadata.namespace for cm in only_b.items] == ["consumer-b"]


def test_bad_selectors_are_bad_requests(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(namespace, field_selector="data.peers=x")
    assert caught.value.status == 400
    assert _body(caught.value)["reason"] == "BadRequest"
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(namespace, label_selector="a in (b")
    assert caught.value.status == 400


def test_not_found_already_exists_and_delete(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(NotFoundException) as caught:
        core.read_namespaced_config_map("x", namespace)
    assert _body(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "x" not found',
        "reason": "NotFound",
        "details": {"name": "x", "kind": "configmaps"},
        "code": 404,
    }
    core.create_namespaced_config_map(namespace, manifests.configmap("x", namespace, {}))
    with pytest.raises(ConflictException) as caught:
        core.create_namespaced_config_map(namespace, manifests.configmap("x", namespace, {}))
    assert _body(caught.value)["reason"] == "AlreadyExists"
    assert _body(caught.value)["message"] == 'configmaps "x" already exists'

    status = core.delete_namespaced_config_map("x", namespace)
    assert status["status"] == "Success" and status["details"]["name"] == "x"
    with pytest.raises(NotFoundException):
        core.read_namespaced_config_map("x", namespace)
    with pytest.raises(NotFoundException) as caught:
        core.create_namespaced_config_map("missing-ns", manifests.configmap("x", "missing-ns", {}))
    assert _body(caught.value)["message"] == 'namespaces "missing-ns" not found'


def test_deleting_a_namespace_deletes_its_contents(
    core: client.CoreV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.namespace("doomed"))
    emulator.apply(manifests.configmap("peers", "doomed", {}))
    emulator.apply(manifests.deployment("node", "doomed", 2))
    emulator.settle()
    assert len(core.list_namespaced_pod("doomed").items) == 2
    core.delete_namespace("doomed")
    assert core.list_namespaced_config_map("doomed").items == []
    assert core.list_namespaced_pod("doomed").items == []
    with pytest.raises(NotFoundException):
        core.read_namespace("doomed")


def test_invalid_objects_are_422(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(
            namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}
        )
    body = _body(caught.value)
    assert caught.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"

    bad = manifests.deployment("node", namespace)
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(namespace, bad)
    body = _body(caught.value)
    assert caught.value.status == 422
    assert body["message"].startswith('Deployment.apps "node" is invalid: spec.template.metadata.labels')

    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(namespace, manifests.configmap("Bad_Name", namespace, {}))
    assert caught.value.status == 422


def test_wrong_kind_or_broken_json_is_400(emulator: KubeEmulator, namespace: str) -> None:
    url = f"{emulator.url}/api/v1/namespaces/{namespace}/configmaps"
    wrong_kind = raw_request(url, "POST", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    assert wrong_kind.status == 400 and wrong_kind.json()["reason"] == "BadRequest"
    broken = raw_request(url, "POST", b"{not json", content_type="application/json")
    assert broken.status == 400 and broken.json()["kind"] == "Status"
    not_an_object = raw_request(url, "POST", [1, 2])
    assert not_an_object.status == 400
    bad_type = raw_request(url, "POST", {"metadata": {"name": "x"}, "data": {"k": 1}})
    assert bad_type.status == 400


def test_unknown_paths_and_methods(emulator: KubeEmulator, namespace: str) -> None:
    missing = raw_request(f"{emulator.url}/api/v1/namespaces/{namespace}/secrets")
    assert missing.status == 404 and missing.json()["reason"] == "NotFound"
    not_allowed = raw_request(f"{emulator.url}/api/v1/configmaps", "POST", {"metadata": {"name": "x"}})
    assert not_allowed.status == 405 and not_allowed.json()["reason"] == "MethodNotAllowed"
    assert raw_request(f"{emulator.url}/openapi/v2").status == 404
    too_big = raw_request(
        f"{emulator.url}/api/v1/namespaces/{namespace}/configmaps", "POST", b"{" + b" " * (4 << 20) + b"}"
    )
    assert too_big.status == 413 and too_big.json()["reason"] == "RequestEntityTooLarge"


def test_patch_content_types(core: client.CoreV1Api, emulator: KubeEmulator, namespace: str) -> None:
    core.create_namespaced_config_map(
        namespace, manifests.configmap("peers", namespace, {"a": "1", "b": "2"})
    )
    # A dict body is sent as strategic merge patch by v37.
    smp = core.patch_namespaced_config_map("peers", namespace, {"data": {"b": None, "c": "3"}})
    assert smp.data == {"a": "1", "c": "3"}
    merge = core.patch_namespaced_config_map(
        "peers", namespace, {"data": {"a": "10"}}, _content_type="application/merge-patch+json"
    )
    assert merge.data == {"a": "10", "c": "3"}
    # A list body is sent as JSON Patch.
    json_patch = core.patch_namespaced_config_map(
        "peers",
        namespace,
        [
            {"op": "test", "path": "/data/a", "value": "10"},
            {"op": "replace", "path": "/data/a", "value": "11"},
            {"op": "add", "path": "/metadata/annotations", "value": {}},
            {"op": "add", "path": "/metadata/annotations/peersync.io~1peers-hash", "value": "h1"},
            {"op": "remove", "path": "/data/c"},
        ],
    )
    assert json_patch.data == {"a": "11"}
    assert json_patch.metadata.annotations == {"peersync.io/peers-hash": "h1"}

    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_config_map(
            "peers", namespace, [{"op": "test", "path": "/data/a", "value": "0"}]
        )
    assert caught.value.status == 422 and _body(caught.value)["reason"] == "Invalid"

    url = f"{emulator.url}/api/v1/namespaces/{namespace}/configmaps/peers"
    unsupported = raw_request(url, "PATCH", {"data": {}}, content_type="application/apply-patch+yaml")
    assert unsupported.status == 415
    assert unsupported.json()["reason"] == "UnsupportedMediaType"
    assert raw_request(url, "PATCH", {"data": {}}, content_type="text/plain").status == 415


def _pb(number: int, value: int | bytes | str) -> bytes:
    """One protobuf field: a varint, or a length-delimited string/message."""

    def varint(n: int) -> bytes:
        out = b""
        while n >= 0x80:
            out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
        return out + bytes([n])

    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.MAGIC + _pb(1, _pb(1, api_version) + _pb(2, kind)) + _pb(2, raw) + _pb(3, "") + _pb(4, "")


def test_protobuf_bodies_of_the_kinds_kubectl_creates(emulator: KubeEmulator, namespace: str) -> None:
    owner = _pb(1, "Deployment") + _pb(3, "node") + _pb(4, "u-1") + _pb(5, "apps/v1") + _pb(6, 1)
    metadata = (
        _pb(1, "peers") + _pb(2, "") + _pb(3, namespace) + _pb(7, 0) + _pb(8, _pb(1, 1_700_000_000))
        + _pb(11, _pb(1, "app") + _pb(2, "node")) + _pb(12, _pb(1, "note") + _pb(2, ""))
        + _pb(13, owner) + _pb(14, "example.com/keep")
    )  # fmt: skip
    raw = (
        _pb(1, metadata)
        + _pb(2, _pb(1, "a") + _pb(2, "1"))
        + _pb(3, _pb(1, "bin") + _pb(2, b"\xff"))
        + _pb(4, 0)
    )
    decoded = protobuf.decode(_envelope("v1", "ConfigMap", raw))
    assert decoded == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "peers",
            "namespace": namespace,
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "labels": {"app": "node"},
            "annotations": {"note": ""},
            "ownerReferences": [
                {
                    "kind": "Deployment",
                    "name": "node",
                    "uid": "u-1",
                    "apiVersion": "apps/v1",
                    "controller": True,
                }
            ],
            "finalizers": ["example.com/keep"],
        },
        "data": {"a": "1"},
        "binaryData": {"bin": "/w=="},
        "immutable": False,
    }
    url = f"{emulator.url}/api/v1/namespaces/{namespace}/configmaps"
    body = _envelope("v1", "ConfigMap", _pb(1, _pb(1, "pb")) + _pb(2, _pb(1, "k") + _pb(2, "v")))
    created = raw_request(url, "POST", body, content_type=protobuf.PROTOBUF)
    assert (created.status, created.json()["data"]) == (201, {"k": "v"})
    deployment = _envelope("apps/v1", "Deployment", _pb(1, _pb(1, "node")))
    refused = raw_request(
        url.replace("/api/v1", "/apis/apps/v1").replace("configmaps", "deployments"),
        "POST",
        deployment,
        content_type=protobuf.PROTOBUF,
    )
    assert (refused.status, refused.json()["reason"]) == (415, "UnsupportedMediaType")
    truncated = raw_request(url, "POST", body[:-3], content_type=protobuf.PROTOBUF)
    assert (truncated.status, truncated.json()["reason"]) == (400, "BadRequest")


def test_patch_with_resource_version_is_a_precondition(core: client.CoreV1Api, namespace: str) -> None:
    cm = core.create_namespaced_config_map(namespace, manifests.configmap("peers", namespace, {"a": "1"}))
    rv = cm.metadata.resource_version
    ok = core.patch_namespaced_config_map(
        "peers", namespace, {"metadata": {"resourceVersion": rv}, "data": {"a": "2"}}
    )
    assert ok.data == {"a": "2"}
    with pytest.raises(ConflictException) as caught:
        core.patch_namespaced_config_map(
            "peers", namespace, {"metadata": {"resourceVersion": rv}, "data": {"a": "3"}}
        )
    assert _body(caught.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as caught:  # JSON Patch `test` on the RV: the apiserver answers 422
        core.patch_namespaced_config_map(
            "peers",
            namespace,
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                {"op": "replace", "path": "/data/a", "value": "4"},
            ],
        )
    assert caught.value.status == 422
    # Without an RV the patch applies to whatever is current.
    assert core.patch_namespaced_config_map("peers", namespace, {"data": {"a": "5"}}).data == {"a": "5"}


def test_identical_patch_is_a_no_op(core: client.CoreV1Api, namespace: str) -> None:
    cm = core.create_namespaced_config_map(namespace, manifests.configmap("peers", namespace, {"a": "1"}))
    again = core.patch_namespaced_config_map("peers", namespace, {"data": {"a": "1"}})
    assert again.metadata.resource_version == cm.metadata.resource_version


def test_many_threads_one_counter(core: client.CoreV1Api, namespace: str) -> None:
    """Concurrent writers through the HTTP API: every successful write has its own resourceVersion."""
    core.create_namespaced_config_map(namespace, manifests.configmap("n", namespace, {"v": "0"}))
    seen: list[str] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        for step in range(10):
            cm = core.patch_namespaced_config_map("n", namespace, {"data": {f"w{index}": str(step)}})
            with lock:
                seen.append(cm.metadata.resource_version)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == len(set(seen)) == 40
    final = core.read_namespaced_config_map("n", namespace)
    assert final.data == {"v": "0", **{f"w{i}": "9" for i in range(4)}}


def test_strategic_merge_patch_merges_known_lists_by_key(
    apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    deployment = manifests.deployment("node", namespace)
    deployment["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    emulator.apply(deployment)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "node",
                            "env": [{"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}],
                        }
                    ]
                }
            }
        }
    }
    d = apps.patch_namespaced_deployment("node", namespace, patch)
    container = d.spec.template.spec.containers[0]
    assert container.image == "ghcr.io/cosmos/gaiad:v19.0.0"  # untouched fields of the merged item stay
    assert [(e.name, e.value) for e in container.env] == [("A", "1"), ("C", "3")]
    # With merge-patch+json the same list replaces the stored one.
    d = apps.patch_namespaced_deployment(
        "node",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "y"}]}}}},
        _content_type="application/merge-patch+json",
    )
    assert [(c.name, c.image) for c in d.spec.template.spec.containers] == [("x", "y")]
