"""Watch semantics through `kubernetes.watch.Watch().stream`, and clean shutdown of open watches."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from urllib.parse import urlparse

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from devnet.kube import manifests
from devnet.kube.server import KubeEmulator
from devnet.loop_thread import LoopThread


def test_watch_sends_added_then_modified(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, manifests.configmap("peers", namespace, {"p": "a"}))
    w = watch.Watch()
    stream = w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=10)
    first = next(stream)
    assert first["type"] == "ADDED" and first["object"].data == {"p": "a"}
    assert isinstance(first["object"], client.V1ConfigMap)
    core.patch_namespaced_config_map("peers", namespace, {"data": {"p": "b"}})
    second = next(stream)
    assert second["type"] == "MODIFIED" and second["object"].data == {"p": "b"}
    core.delete_namespaced_config_map("peers", namespace)
    third = next(stream)
    assert third["type"] == "DELETED" and third["object"].metadata.name == "peers"
    assert int(third["object"].metadata.resource_version) > int(second["object"].metadata.resource_version)
    w.stop()


def test_watch_from_a_resource_version_sends_only_later_events(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(namespace, manifests.configmap("a", namespace, {"v": "1"}))
    listed = core.list_namespaced_config_map(namespace)
    core.create_namespaced_config_map(namespace, manifests.configmap("b", namespace, {"v": "1"}))
    core.patch_namespaced_config_map("a", namespace, {"data": {"v": "2"}})
    w = watch.Watch()
    events = []
    for event in w.stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    ):
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 2:
            w.stop()
    assert events == [("ADDED", "b"), ("MODIFIED", "a")]


def test_watch_with_field_selector_like_rollout_status(
    apps: client.AppsV1Api, emulator: KubeEmulator, namespace: str
) -> None:
    emulator.apply(manifests.deployment("node", namespace))
    emulator.apply(manifests.deployment("other", namespace))
    w = watch.Watch()
    stream = w.stream(
        apps.list_namespaced_deployment, namespace, field_selector="metadata.name=node", timeout_seconds=10
    )
    assert [next(stream)["object"].metadata.name] == ["node"]
    emulator.tick()  # both deployments get status; only `node` may show up
    event = next(stream)
    assert event["type"] == "MODIFIED" and event["object"].metadata.name == "node"
    assert event["object"].status.observed_generation == 1
    w.stop()


def test_objects_leaving_a_label_selection_are_deleted_events(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "cm", "labels": {"managed": "yes"}}, "data": {}}
    )
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map, namespace, label_selector="managed=yes", timeout_seconds=10
    )
    assert next(stream)["type"] == "ADDED"
    core.patch_namespaced_config_map("cm", namespace, {"metadata": {"labels": {"managed": "no"}}})
    assert next(stream)["type"] == "DELETED"
    core.patch_namespaced_config_map("cm", namespace, {"metadata": {"labels": {"managed": "yes"}}})
    assert next(stream)["type"] == "ADDED"
    w.stop()


def test_no_op_writes_emit_no_event(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(
        namespace, manifests.configmap("peers", namespace, {"p": "a"})
    )
    core.replace_namespaced_config_map("peers", namespace, created)  # identical: no event
    core.patch_namespaced_config_map("peers", namespace, {"data": {"p": "a"}})  # identical: no event
    core.patch_namespaced_config_map("peers", namespace, {"data": {"p": "b"}})
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=created.metadata.resource_version,
        timeout_seconds=10,
    )
    event = next(stream)
    assert event["type"] == "MODIFIED" and event["object"].data == {"p": "b"}
    w.stop()


def test_watch_closes_at_timeout_seconds(core: client.CoreV1Api, namespace: str) -> None:
    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=1))
    assert events == []
    assert 0.9 <= time.monotonic() - started < 5


def test_too_old_resource_version_is_410(tmp_path: object) -> None:
    emulator = KubeEmulator(step_seconds=0, history_size=5)
    loop = LoopThread()
    try:
        loop.call(emulator.start())
        emulator.apply(manifests.namespace("ns"))
        old = emulator.resource_version
        for i in range(10):
            emulator.apply(manifests.configmap("cm", "ns", {"i": str(i)}))
        configuration = client.Configuration(host=emulator.url)
        with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            with pytest.raises(ApiException) as caught:
                list(
                    watch.Watch().stream(
                        core.list_namespaced_config_map, "ns", resource_version=old, timeout_seconds=5
                    )
                )
            assert caught.value.status == 410
    finally:
        loop.call(emulator.stop())
        loop.close()


def test_stop_ends_open_watches_and_leaves_no_tasks() -> None:
    emulator = KubeEmulator(step_seconds=0.01)
    loop = LoopThread()
    loop.call(emulator.start())
    emulator.apply(manifests.namespace("ns"))
    url = urlparse(emulator.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("GET", "/api/v1/namespaces/ns/configmaps?watch=true")
    response = connection.getresponse()
    assert response.status == 200  # headers are sent only once the watch is registered
    body: list[bytes] = []
    reader = threading.Thread(target=lambda: body.append(response.read()))
    reader.start()

    async def leftover_tasks() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    try:
        loop.call(emulator.stop())
        reader.join(timeout=5)
        assert not reader.is_alive(), "the watch stayed open after stop()"
        assert body == [b""]
        assert loop.call(leftover_tasks()) == []
    finally:
        connection.close()
        loop.close()
