"""A whole world in one process, for tests and benchmarks: a devnet (real Temporal dev server, chain and
kube emulators) on free ports and its own loopback subnet, and peersync's worker and watcher as real
processes that a test can start and SIGKILL."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from core.contracts import Progress, RegistryView
from core.ids import consumer_sync_id, registry_id
from devnet.files import ClusterInfo, DevnetManifest
from devnet.ports import free_port
from devnet.processes import ChildProcess
from devnet.scenario import Scenario, default_scenario
from devnet.stack import Devnet, DevnetOptions
from workflows.consumer_sync import ConsumerSyncState
from workflows.registry import RegistryWorkflow

T = TypeVar("T")


def default_world(subnet: str) -> Scenario:
    """DESIGN.md's default scenario, moved to `subnet` (e.g. 127.31.7), with half-second blocks."""
    return default_scenario(subnet, block_time=0.5)


def rfc3339_seconds(text: str) -> float:
    """CometBFT times carry nanoseconds, which datetime cannot parse; keep microseconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC).timestamp() + float(
        f"0.{frac or 0}"
    )


def random_subnet() -> str:
    return f"127.{random.randint(20, 250)}.{random.randint(0, 250)}"


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `check` until it returns a truthy value (no fixed sleeps: returns as soon as it holds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.1)


class KubeLog:
    """Every write the kube emulator commits, in order (a store listener): counts writes and rollouts."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str, dict[str, Any]]] = []
        self.olds: list[dict[str, Any] | None] = []  # each event's object before it, when there was one

    def __call__(self, event: Any) -> None:
        new = event.new
        self.events.append((event.type, event.rt.kind, new.namespace, new.name, new.obj))
        self.olds.append(event.old.obj if event.old is not None else None)

    def objects(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return [obj for _, k, ns, _, obj in self.events if k == kind and ns == namespace]

    def configmap_writes(self, namespace: str) -> int:
        """MODIFIED events of the namespace's ConfigMaps (a write that changed nothing is no event)."""
        return sum(
            1 for t, k, ns, _, _ in self.events if t == "MODIFIED" and k == "ConfigMap" and ns == namespace
        )

    def configmap_data_writes(self, namespace: str) -> int:
        """ConfigMap writes of the namespace that changed its data (the peers), not just its annotations."""
        return sum(
            1
            for (t, k, ns, _, obj), old in zip(self.events, self.olds, strict=True)
            if t == "MODIFIED"
            and k == "ConfigMap"
            and ns == namespace
            and (old or {}).get("data") != obj.get("data")
        )

    def generations(self, kind: str, namespace: str) -> list[int]:
        """The distinct metadata.generation values the workload went through, in order."""
        seen: list[int] = []
        for obj in self.objects(kind, namespace):
            gen = int(obj["metadata"].get("generation", 0))
            if not seen or seen[-1] != gen:
                seen.append(gen)
        return seen


class World:
    def __init__(
        self, tmp: Path, scenario: Scenario, kube_step: float = 0.1, temporal_args: list[str] | None = None
    ) -> None:
        self.tmp = tmp
        self.scenario = scenario
        self.subnet = (
            scenario.validators[0].endpoint.rsplit(".", 1)[0] if scenario.validators[0].endpoint else ""
        )
        self.devnet = self._make_devnet(
            scenario,
            DevnetOptions(
                state_dir=tmp / "devnet",
                temporal_port=0,
                ui_port=None,
                chain_rpc_port=0,
                chain_rest_port=0,
                kube_port=0,
                kube_step_seconds=kube_step,
                registry_refresh="1s",
                node_catch_up_seconds=1.0,  # a restarted node catches up quickly: restarts stay cheap in tests
                temporal_args=temporal_args or [],
            ),
        )
        self.workers: list[ChildProcess] = []
        self.watch_urls: dict[str, str] = {}  # watcher name -> base URL of its /healthz and /metrics
        self.client: Client
        self.manifest: DevnetManifest
        self.http: aiohttp.ClientSession

    testbed = "emulated"

    def _make_devnet(self, scenario: Scenario, opts: DevnetOptions) -> Devnet:
        return Devnet(scenario, opts)

    async def __aenter__(self) -> World:
        self.manifest = await self.devnet.start()
        self.client = await Client.connect(
            self.manifest.temporal_address, data_converter=pydantic_data_converter
        )
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for worker in self.workers:
            await worker.stop(grace=5)
        await self.http.close()
        await self.devnet.stop()

    # ---- peersync processes ------------------------------------------------------------------------

    def cluster(self, cluster_id: str = "alice") -> ClusterInfo:
        return next(c for c in self.manifest.clusters if c.id == cluster_id)

    def env(self, cluster_id: str = "alice", **extra: str) -> dict[str, str]:
        info = self.cluster(cluster_id)
        return {**self.devnet.settings_for(info), **extra}

    async def start_worker(
        self, cluster_id: str = "alice", schedule: bool = False, **extra: str
    ) -> ChildProcess:
        """`peersync worker`; without the reconcile schedule unless asked, so no periodic reconcile can land in
        the middle of a test that counts writes and rollouts."""
        return await self.start_service(
            "worker", cluster_id, *([] if schedule else ["--no-schedule"]), **extra
        )

    async def start_watcher(self, cluster_id: str = "alice", **extra: str) -> ChildProcess:
        """`peersync watch`, serving /healthz and /metrics on a free port unless PEERSYNC_METRICS_ADDRESS is set."""
        address = extra.setdefault("PEERSYNC_METRICS_ADDRESS", f"127.0.0.1:{free_port()}")
        child = await self.start_service("watch", cluster_id, **extra)
        self.watch_urls[child.name] = f"http://{address}"
        return child

    async def watcher_health(self, watcher: ChildProcess) -> int | None:
        """HTTP status of the watcher's /healthz (200 subscribed, 503 not), None while it does not answer."""
        try:
            async with self.http.get(f"{self.watch_urls[watcher.name]}/healthz") as resp:
                return resp.status
        except aiohttp.ClientError:
            return None

    async def watcher_connected(
        self, watcher: ChildProcess, connected: bool = True, timeout: float = 20
    ) -> None:
        """Wait until the watcher's /healthz says it is (or, connected=False, is not) subscribed."""
        want = 200 if connected else 503

        async def answers() -> bool:
            watcher.raise_if_exited()
            return await self.watcher_health(watcher) == want

        await eventually(answers, timeout, f"{watcher.name} /healthz {want}")

    async def watcher_metrics(self, watcher: ChildProcess) -> dict[str, float]:
        """The watcher's /metrics samples: `name{labels}` -> value."""
        return await self.scrape(self.watch_urls[watcher.name])

    async def scrape(self, base_url: str) -> dict[str, float]:
        """A Prometheus endpoint's samples, `name{label="v",...}` (labels sorted) -> value."""
        async with self.http.get(f"{base_url}/metrics") as resp:
            assert resp.status == 200, resp.status
            text = await resp.text()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    @staticmethod
    def log_text(child: ChildProcess) -> str:
        assert child.log_file is not None
        return child.log_file.read_text(errors="replace")

    async def start_service(
        self, command: str, cluster_id: str = "alice", *args: str, **extra: str
    ) -> ChildProcess:
        """`peersync <command>` as a real process with the cluster's settings (its log in the test's tmp)."""
        n = sum(1 for w in self.workers if w.name.startswith(f"{command}-{cluster_id}-"))
        child = ChildProcess(
            f"{command}-{cluster_id}-{n}",
            [sys.executable, "-m", "workers.cli", command, *args],
            log_file=self.tmp / f"{command}-{cluster_id}-{n}.log",
            env=self.env(cluster_id, **extra),
        )
        await child.start()
        self.workers.append(child)
        return child

    async def kill_worker(self, child: ChildProcess) -> None:
        assert child.proc is not None
        child.proc.send_signal(signal.SIGKILL)
        await child.wait()

    async def peersync(self, *args: str, cluster_id: str = "alice", **extra: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.cli", *args,
            env={**os.environ, **self.env(cluster_id, **extra)},
            # No terminal, as in CI (a test run from a terminal must not make the CLI ask for confirmation).
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    # ---- the chain ---------------------------------------------------------------------------------

    async def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.manifest.chain_rpc_url}/devnet/{path}", json=body) as resp:
            payload = await resp.json()
            assert resp.status in (200, 202), payload  # 202: a tx held while blocks are paused
            return payload

    async def edit_validator(self, validator: str, details: str, **extra: Any) -> int:
        return int(
            (await self.admin("edit_validator", {"validator": validator, "details": details, **extra}))[
                "height"
            ]
        )

    async def block_time(self, height: int) -> float:
        """The block's header time as a Unix timestamp (its commit time on the emulator)."""
        async with self.http.get(
            f"{self.manifest.chain_rpc_url}/block", params={"height": str(height)}
        ) as resp:
            return rfc3339_seconds((await resp.json())["result"]["block"]["header"]["time"])

    def operator(self, moniker: str) -> str:
        assert self.devnet.chain is not None
        return next(v.operator_address for v in self.devnet.chain.state().validators if v.moniker == moniker)

    def account(self, moniker: str) -> str:
        """The validator's account address (what txs carry as message.sender)."""
        assert self.devnet.chain is not None
        return next(v.account_address for v in self.devnet.chain.state().validators if v.moniker == moniker)

    async def chain_state(self) -> dict[str, Any]:
        """The chain emulator's `GET /devnet/state` (height, websocket clients, faults, validators, nodes)."""
        async with self.http.get(f"{self.manifest.chain_rpc_url}/devnet/state") as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())

    # ---- the cluster -------------------------------------------------------------------------------

    def kube_api(self, cluster_id: str = "alice") -> k8s.ApiClient:
        return k8s_config.new_client_from_config(config_file=str(self.cluster(cluster_id).kubeconfig))

    def kube(self, cluster_id: str = "alice") -> Any:
        return self.devnet.kubes[cluster_id]

    async def kube_fault(self, fault: dict[str, Any], cluster_id: str = "alice") -> None:
        url = f"{self.cluster(cluster_id).kube_url}/devnet/faults"
        async with self.http.post(url, json=fault) as resp:
            assert resp.status in (200, 201), await resp.text()

    def configmap_text(self, namespace: str, cluster_id: str = "alice") -> str:
        ns = self.kube(cluster_id).get("Namespace", "", namespace)
        notes = ns["metadata"]["annotations"]
        cm = self.kube(cluster_id).get("ConfigMap", namespace, notes["peersync.io/configmap"])
        return cm["data"][notes["peersync.io/peers-key"]]

    def drop_first_peer(self, namespace: str, cluster_id: str = "alice") -> str:
        """Someone edits a config.toml ConfigMap by hand and drops its first peer; returns the text before."""
        good = self.configmap_text(namespace, cluster_id)
        ns = self.kube(cluster_id).get("Namespace", "", namespace)
        cm = self.kube(cluster_id).get(
            "ConfigMap", namespace, ns["metadata"]["annotations"]["peersync.io/configmap"]
        )
        first_peer = good.split('persistent_peers = "')[1].split(",")[0]
        cm["data"]["config.toml"] = good.replace(f"{first_peer},", "")
        self.kube(cluster_id).apply(cm)
        return good

    def forget_rollout(self, namespace: str, cluster_id: str = "alice") -> None:
        """A run that wrote the ConfigMap and died before its rollout: the pods run an older peer set."""
        kube = self.kube(cluster_id)
        old = "0" * 16
        workload = self.workload(namespace, cluster_id)
        workload["spec"]["template"]["metadata"]["annotations"]["peersync.io/peers-hash"] = old
        kube.apply(workload)
        ns = kube.get("Namespace", "", namespace)
        cm = kube.get("ConfigMap", namespace, ns["metadata"]["annotations"]["peersync.io/configmap"])
        cm["metadata"]["annotations"]["peersync.io/rolled-hash"] = old
        kube.apply(cm)

    def workload(self, namespace: str, cluster_id: str = "alice") -> dict[str, Any]:
        ns = self.kube(cluster_id).get("Namespace", "", namespace)
        kind, name = ns["metadata"]["annotations"]["peersync.io/workload"].split("/")
        return self.kube(cluster_id).get(
            "Deployment" if kind == "deployment" else "StatefulSet", namespace, name
        )

    def generation(self, namespace: str, cluster_id: str = "alice") -> int:
        return int(self.workload(namespace, cluster_id)["metadata"]["generation"])

    def record_kube(self, cluster_id: str = "alice") -> KubeLog:
        """From now on, log every object write of the cluster (the store calls listeners on its commits)."""
        log = KubeLog()
        self.kube(cluster_id).store.add_listener(log)
        return log

    def patch_workload_spec(self, namespace: str, spec: dict[str, Any], cluster_id: str = "alice") -> None:
        """Merge `spec` into the namespace's workload (as an operator's `kubectl apply` would)."""
        obj = self.workload(namespace, cluster_id)
        obj["spec"].update(spec)
        self.kube(cluster_id).apply(obj)

    # ---- the registry ------------------------------------------------------------------------------

    async def registry(self, cluster_id: str = "alice") -> list[RegistryView]:
        return await self.handle(registry_id(cluster_id)).query(RegistryWorkflow.table)

    async def registry_row(self, moniker: str, cluster_id: str = "alice") -> RegistryView:
        return next(r for r in await self.registry(cluster_id) if r.moniker == moniker)

    async def nudge_registry(self, cluster_id: str = "alice") -> None:
        """What the watcher does on a new block: ask for a refresh now instead of at the next timer."""
        await self.handle(registry_id(cluster_id)).signal(RegistryWorkflow.refresh)

    async def registry_ready(self, validators: int = 4, cluster_id: str = "alice") -> list[RegistryView]:
        async def ready() -> list[RegistryView] | None:
            try:
                rows = await self.registry(cluster_id)
            except RPCError:  # not started, or no worker has answered its first task yet
                return None
            return rows if len(rows) == validators else None

        rows = await eventually(ready, 30, "the registry's first refresh")
        await self.first_drift_check_done(cluster_id)
        return rows

    async def first_drift_check_done(self, cluster_id: str = "alice") -> None:
        """Wait until the drift check a new registry starts after its first refresh has finished, so that it
        cannot repair (and so answer for) a move the test makes next."""
        prefix = f"reconcile-{cluster_id}-registry-start-"

        async def done() -> bool:
            listed = self.client.list_workflows("WorkflowType = 'ReconcileWorkflow'")
            runs = [w async for w in listed if w.id.startswith(prefix)]
            return bool(runs) and all(w.status != WorkflowExecutionStatus.RUNNING for w in runs)

        await eventually(done, 60, f"the first drift check of registry-{cluster_id}")

    async def registry_sees(self, moniker: str, height: int, cluster_id: str = "alice") -> RegistryView:
        """Nudge the registry until its row for `moniker` shows the edit committed at `height`."""

        async def seen() -> RegistryView | None:
            row = await self.registry_row(moniker, cluster_id)
            if row.height >= height:
                return row
            await self.nudge_registry(cluster_id)
            return None

        return await eventually(seen, 30, f"the registry to see {moniker}'s edit at height {height}")

    # ---- Temporal ----------------------------------------------------------------------------------

    async def progress(self, workflow_id: str) -> Progress:
        return await self.handle(workflow_id).query("progress", result_type=Progress)

    async def consumer_sync(self, namespace: str, cluster_id: str = "alice") -> ConsumerSyncState:
        return await self.handle(consumer_sync_id(cluster_id, namespace)).query(
            "status", result_type=ConsumerSyncState
        )

    async def restart_temporal(self) -> None:
        """Stop the dev server and start it again on the same port and SQLite file."""
        await self.devnet.restart_temporal()

    async def started(self, workflow_id: str, timeout: float = 30.0) -> bool:
        """Wait until a workflow with this id exists (started by anyone)."""
        return await eventually(lambda: self.exists(workflow_id), timeout, f"workflow {workflow_id} to start")

    async def exists(self, workflow_id: str) -> bool:
        try:
            await self.handle(workflow_id).describe()
        except RPCError:
            return False
        return True

    async def start_input(self, workflow_id: str) -> dict[str, Any]:
        """The JSON input the workflow's first run was started with (e.g. an EndpointChangeRequest)."""
        history = await self.handle(workflow_id).fetch_history()
        payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
        return dict(json.loads(payload.data))

    async def runs(self, query: str) -> Counter[str]:
        """Workflow id -> number of runs, for every execution matching a visibility query."""
        return Counter([wf.id async for wf in self.client.list_workflows(query)])

    def handle(self, workflow_id: str, result_type: type | None = None) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id, result_type=result_type)

    async def finished(self, workflow_id: str, result_type: type, timeout: float = 60.0) -> Any:
        """The result of a workflow once it closes (raises its failure); waits without a fixed sleep."""
        handle = self.handle(workflow_id, result_type)

        async def closed() -> bool:
            try:
                return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING
            except RPCError:  # not started yet
                return False

        await eventually(closed, timeout, f"workflow {workflow_id} to close")
        return await handle.result()
