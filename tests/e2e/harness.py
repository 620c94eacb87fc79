"""A whole world per test: a devnet (real Temporal dev server, chain and kube emulators) on free ports and
its own loopback subnet, and peersync workers as real processes that a test can start and SIGKILL."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from devnet.files import ClusterInfo, DevnetManifest
from devnet.processes import ChildProcess
from devnet.scenario import ClusterSpec, ConsumerSpec, NamespaceSpec, Scenario, ValidatorSpec
from devnet.stack import Devnet, DevnetOptions

T = TypeVar("T")
MONIKERS = ["alice", "bob", "carol", "dave"]


def default_world(subnet: str) -> Scenario:
    """DESIGN.md's default scenario, moved to `subnet` (e.g. 127.31.7) so parallel worlds never collide."""
    return Scenario(
        allow_cidrs=[f"{subnet}.0/24"],
        block_time=0.5,
        validators=[
            ValidatorSpec(moniker=m, endpoint=f"{subnet}.{i}") for i, m in enumerate(MONIKERS, start=1)
        ],
        consumers=[
            ConsumerSpec(chain_id="consumer-1", opted_in=MONIKERS),
            ConsumerSpec(chain_id="consumer-2", opted_in=["alice", "bob", "carol"]),
            ConsumerSpec(chain_id="consumer-3", opted_in=["alice", "dave"]),
        ],
        clusters=[
            ClusterSpec(
                id="alice",
                validator="alice",
                namespaces=[
                    NamespaceSpec(consumer="consumer-1", workload="deployment", replicas=2),
                    NamespaceSpec(
                        consumer="consumer-2", workload="statefulset", replicas=2, peers_format="init.sh"
                    ),
                    NamespaceSpec(consumer="consumer-3", workload="deployment", peers_format="key"),
                ],
            )
        ],
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


class World:
    def __init__(self, tmp: Path, scenario: Scenario, kube_step: float = 0.1) -> None:
        self.tmp = tmp
        self.scenario = scenario
        self.subnet = (
            scenario.validators[0].endpoint.rsplit(".", 1)[0] if scenario.validators[0].endpoint else ""
        )
        self.devnet = Devnet(
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
            ),
        )
        self.workers: list[ChildProcess] = []
        self.client: Client
        self.manifest: DevnetManifest
        self.http: aiohttp.ClientSession

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

    async def start_worker(self, cluster_id: str = "alice", **extra: str) -> ChildProcess:
        n = len(self.workers)
        child = ChildProcess(
            f"worker-{cluster_id}-{n}",
            [sys.executable, "-m", "workers.cli", "worker"],
            log_file=self.tmp / f"worker-{cluster_id}-{n}.log",
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
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    # ---- the chain ---------------------------------------------------------------------------------

    async def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.manifest.chain_rpc_url}/devnet/{path}", json=body) as resp:
            payload = await resp.json()
            assert resp.status == 200, payload
            return payload

    async def edit_validator(self, validator: str, details: str, **extra: Any) -> int:
        return int(
            (await self.admin("edit_validator", {"validator": validator, "details": details, **extra}))[
                "height"
            ]
        )

    def operator(self, moniker: str) -> str:
        assert self.devnet.chain is not None
        return next(v.operator_address for v in self.devnet.chain.state().validators if v.moniker == moniker)

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

    def workload(self, namespace: str, cluster_id: str = "alice") -> dict[str, Any]:
        ns = self.kube(cluster_id).get("Namespace", "", namespace)
        kind, name = ns["metadata"]["annotations"]["peersync.io/workload"].split("/")
        return self.kube(cluster_id).get(
            "Deployment" if kind == "deployment" else "StatefulSet", namespace, name
        )

    def generation(self, namespace: str, cluster_id: str = "alice") -> int:
        return int(self.workload(namespace, cluster_id)["metadata"]["generation"])

    # ---- Temporal ----------------------------------------------------------------------------------

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
