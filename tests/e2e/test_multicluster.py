"""Two operators, one chain, one Temporal: alice's and carol's clusters (a kube emulator each), each with its
own worker and watcher. A move is applied in both clusters, each by its own worker, under ids and on task
queues of its own cluster (DESIGN invariant 9)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id, registry_id
from devnet.processes import ChildProcess
from devnet.real.world import make_world
from devnet.scenario import ClusterSpec
from devnet.testbed import default_world, random_subnet

SLOW_TIMER = {"PEERSYNC_REGISTRY_REFRESH": "60s"}
CLUSTERS = ("alice", "carol")

pytestmark = pytest.mark.both_testbeds


async def test_bob_moves_and_each_cluster_follows_by_its_own_worker_only(
    tmp_path: Path, testbed: str
) -> None:
    scenario = default_world(random_subnet()).model_copy(
        update={
            "clusters": [
                ClusterSpec(id="alice", validator="alice"),
                ClusterSpec(id="carol", validator="carol"),
            ]
        }
    )
    async with make_world(testbed, tmp_path, scenario) as world:
        workers: dict[str, ChildProcess] = {}
        for cluster in CLUSTERS:
            workers[cluster] = await world.start_worker(cluster, **SLOW_TIMER)
            watcher = await world.start_watcher(cluster, **SLOW_TIMER)
            await world.registry_ready(cluster_id=cluster)
            await world.watcher_connected(watcher)
        namespaces = {
            c: [ns.name for ns in scenario.namespaces(scenario.clusters[i])] for i, c in enumerate(CLUSTERS)
        }
        assert namespaces == {
            "alice": ["alice-consumer-1", "alice-consumer-2", "alice-consumer-3"],
            "carol": ["carol-consumer-1", "carol-consumer-2"],
        }
        logs = {c: world.record_kube(c) for c in CLUSTERS}
        texts = {c: {ns: world.configmap_text(ns, c) for ns in namespaces[c]} for c in CLUSTERS}
        generations = {c: {ns: world.generation(ns, c) for ns in namespaces[c]} for c in CLUSTERS}

        bob, new = world.operator("bob"), f"{world.subnet}.22"
        height = await world.edit_validator("bob", f"p2p={new}")
        ids = {c: endpoint_change_id(c, bob, height) for c in CLUSTERS}
        assert len(set(ids.values())) == 2 and all(c in ids[c] for c in CLUSTERS)
        for cluster in CLUSTERS:
            result = await world.finished(ids[cluster], EndpointChangeResult)
            assert result.phase == Phase.DONE
            assert sorted(c.consumer.namespace for c in result.consumers) == [
                f"{cluster}-consumer-1",
                f"{cluster}-consumer-2",
            ]
            assert (await world.handle(ids[cluster]).describe()).task_queue == f"peersync-{cluster}"

        for cluster in CLUSTERS:
            for ns in namespaces[cluster]:
                text = world.configmap_text(ns, cluster)
                if ns.endswith("consumer-3"):  # bob is not on consumer-3: untouched
                    assert (
                        text == texts[cluster][ns]
                        and world.generation(ns, cluster) == generations[cluster][ns]
                    )
                    continue
                assert f"@{new}:" in text and f"@{world.subnet}.2:" not in text, (cluster, ns, text)
                assert world.generation(ns, cluster) == generations[cluster][ns] + 1, (cluster, ns)
            # Each kube saw exactly its own cluster's writes: one ConfigMap write per affected namespace.
            written = sorted({ns for _, kind, ns, _, _ in logs[cluster].events if kind == "ConfigMap"})
            assert written == [f"{cluster}-consumer-1", f"{cluster}-consumer-2"]
            assert all(logs[cluster].configmap_data_writes(ns) == 1 for ns in written)  # the peers, once
            for ns in written:
                labels = world.kube(cluster).get("Namespace", "", ns)["metadata"]["labels"]
                assert labels["peersync.io/cluster"] == cluster

        # Every workflow of either cluster: its id names its cluster, it runs on its cluster's task queue,
        # and only its cluster's worker ever ran a task of it.
        identity = {c: f"{workers[c].pid}@{socket.gethostname()}" for c in CLUSTERS}
        seen = {c: 0 for c in CLUSTERS}
        async for wf in world.client.list_workflows():
            cluster = wf.task_queue.removeprefix("peersync-")
            assert cluster in CLUSTERS, (wf.id, wf.task_queue)
            assert f"-{cluster}-" in f"{wf.id}-", (wf.id, wf.task_queue)
            seen[cluster] += 1
            history = await world.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            for event in history.events:
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                    assert event.workflow_task_started_event_attributes.identity == identity[cluster], wf.id
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    assert event.activity_task_started_event_attributes.identity == identity[cluster], wf.id
        assert all(n >= 4 for n in seen.values()), seen  # registry, change, consumer syncs, rollout slots
        for cluster in CLUSTERS:
            assert await world.exists(registry_id(cluster))
