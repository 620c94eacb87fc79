"""`peersync devnet`: Temporal, the chain emulator, one kube emulator per cluster, and peersync's services.

Start order: Temporal, chain, clusters (seeded), env files, services; `ready` appears only once every part
answers and every watcher is subscribed to the chain (its /healthz says so): a validator that moves right
after `ready` is seen by the watcher, not left to the registry's timer. Stop order is the reverse, and it
runs on SIGINT/SIGTERM as well as on any start failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

import workflows
from core.ids import registry_id
from devnet.chain.server import ChainEmulator
from devnet.files import READY, ClusterInfo, DevnetManifest, atomic_write, env_lines
from devnet.kube.server import KubeEmulator
from devnet.node_restarts import NodeRestarts
from devnet.ports import free_port, port_or_free
from devnet.processes import ChildExited, ChildProcess
from devnet.scenario import ClusterSpec, Scenario
from devnet.temporal import TemporalDevServer, TemporalOptions
from devnet.world import grant_shipped_rbac, seed_cluster
from workflows.registry import RegistryWorkflow

HOST = "127.0.0.1"
CHAIN_HEIGHT = "chain-height"  # the emulated chain's last height, so a restart continues above it
CODE_STAMP = "workflow-code"  # fingerprint of the workflow code that wrote temporal.db


def workflow_code_fingerprint() -> str:
    """sha256 over the workflow package's sources: what replay depends on."""
    digest = hashlib.sha256()
    for path in sorted(Path(workflows.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


SERVICE_READY_TIMEOUT = 60.0
HEALTH_POLL_SECONDS = 0.1
PORT_ATTEMPTS = 3
ADDRESS_IN_USE = "address already in use"


class DevnetOptions(BaseModel):
    state_dir: Path
    temporal_port: int = 7233
    ui_port: int | None = 8233
    chain_rpc_port: int = 26657
    chain_rest_port: int = 1317
    kube_port: int = 6443
    kube_step_seconds: float = 0.5
    block_time: float | None = None
    registry_refresh: str = "5s"
    # How long an emulated consumer node catches up after its pod is replaced (devnet.node_restarts).
    node_catch_up_seconds: float = 3.0
    # The worker runs as the peersync-worker ServiceAccount under deploy/kubernetes's RBAC; off: cluster admin.
    kube_rbac: bool = True
    services: list[str] = []
    temporal_args: list[str] = []
    # PEERSYNC_REQUIRE_APPROVAL of every cluster's processes (`peersync devnet --require-approval`).
    require_approval: bool = False


class Devnet:
    def __init__(self, scenario: Scenario, opts: DevnetOptions) -> None:
        self.scenario = scenario
        self.opts = opts
        self.state_dir = opts.state_dir.resolve()
        self._stack = AsyncExitStack()
        self.chain: ChainEmulator | None = None
        self.kubes: dict[str, KubeEmulator] = {}
        self.children: list[ChildProcess] = []
        self.health_urls: dict[str, str] = {}  # watcher service name -> its /healthz
        self.node_restarts: dict[str, NodeRestarts] = {}  # cluster id -> the pod replacements it saw
        self.manifest: DevnetManifest | None = None
        self.temporal: TemporalDevServer | None = None

    async def start(self) -> DevnetManifest:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / READY).unlink(missing_ok=True)
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    def _keep_history_only_for_this_code(self) -> None:
        """Temporal's history is kept across restarts, but only for the same workflow code: runs left
        by other code would fail replay (nondeterminism) forever. Those are set aside, not deleted."""
        stamp = self.state_dir / CODE_STAMP
        db = self.state_dir / "temporal.db"
        now = workflow_code_fingerprint()
        if db.exists() and (not stamp.exists() or stamp.read_text() != now):
            aside = db.with_name(f"temporal.db.{stamp.read_text() if stamp.exists() else 'old'}")
            db.replace(aside)
            print(
                f"devnet: workflow code changed; previous Temporal history moved to {aside}", file=sys.stderr
            )
        atomic_write(stamp, now)

    async def _start(self) -> DevnetManifest:
        self._keep_history_only_for_this_code()
        temporal = await self._start_temporal()
        chain_rpc_url, chain_rest_url = await self._start_chain()
        clusters = [
            await self._start_cluster(index, cluster) for index, cluster in enumerate(self.scenario.clusters)
        ]
        self.manifest = DevnetManifest(
            state_dir=self.state_dir,
            pid=os.getpid(),
            testbed=self.testbed,
            temporal_address=temporal.address,
            temporal_namespace=temporal.opts.namespace,
            temporal_ui_url=temporal.ui_url,
            chain_rpc_url=chain_rpc_url,
            chain_rest_url=chain_rest_url,
            bech32_prefix=self.scenario.bech32_prefix,
            allow_cidrs=self.scenario.allow_cidrs,
            clusters=clusters,
            **self._manifest_extras(),
        )
        for info in clusters:
            atomic_write(info.env_file, env_lines(self.settings_for(info)))
        for info in clusters:
            await self._start_services(info)
        await self._check_answers()
        self.manifest.save()
        atomic_write(self.state_dir / READY, "")
        return self.manifest

    # ---- the testbed: emulators here; devnet.real.stack.RealDevnet overrides these four ------------

    testbed = "emulated"

    def _manifest_extras(self) -> dict[str, object]:
        return {}

    async def _start_chain(self) -> tuple[str, str]:
        """The chain; returns its CometBFT RPC and REST URLs."""
        opts = self.opts
        self.chain = ChainEmulator(
            self.scenario,
            host=HOST,
            rpc_port=opts.chain_rpc_port,  # 0: the emulators bind a free port themselves, race-free
            rest_port=opts.chain_rest_port,
            block_time=opts.block_time,
            initial_height=self._saved_height() + 1,
        )
        await self._enter(self.chain)
        self._stack.callback(self._save_height)
        self.chain.nodes.catch_up_seconds = opts.node_catch_up_seconds
        return self.chain.rpc_url, self.chain.rest_url

    async def _start_cluster(self, index: int, cluster: ClusterSpec) -> ClusterInfo:
        """One operator's cluster, seeded from the scenario, with its kubeconfigs."""
        opts = self.opts
        assert self.chain is not None
        port = opts.kube_port + index if opts.kube_port else 0
        kube = KubeEmulator(host=HOST, port=port, step_seconds=opts.kube_step_seconds, rbac=opts.kube_rbac)
        await self._enter(kube)
        self.kubes[cluster.id] = kube
        # Before seeding: the first pods seen Ready are the synced nodes, later revisions restarts.
        self.node_restarts[cluster.id] = NodeRestarts(kube, self.chain.nodes)
        kube.store.add_listener(self.node_restarts[cluster.id])
        namespaces = seed_cluster(kube, self.scenario, cluster)
        suffix = "" if index == 0 else f"-{cluster.id}"
        kubeconfig = kube.write_kubeconfig(
            self.state_dir / f"kubeconfig{suffix}", context=f"devnet-{cluster.id}"
        )
        worker_kubeconfig = None
        if opts.kube_rbac:
            token = grant_shipped_rbac(kube, self.scenario, cluster)
            worker_kubeconfig = kube.write_kubeconfig(
                self.state_dir / f"kubeconfig-worker{suffix}",
                context=f"devnet-{cluster.id}-worker",
                token=token,
            )
        return ClusterInfo(
            id=cluster.id,
            validator_moniker=cluster.validator,
            local_validator=self._operator_of(cluster.validator),
            kube_url=kube.url,
            kubeconfig=kubeconfig,
            worker_kubeconfig=worker_kubeconfig,
            env_file=self.state_dir / f"env{suffix}",
            namespaces=namespaces,
        )

    async def _kube_answers(self, session: aiohttp.ClientSession, info: ClusterInfo) -> None:
        async with session.get(f"{info.kube_url}/version") as resp:
            if resp.status != 200:
                raise RuntimeError(f"{info.kube_url}/version answered HTTP {resp.status}")

    async def _start_temporal(self) -> TemporalDevServer:
        """Temporal cannot be told to bind port 0, so a free port is picked for it; between the pick and
        its bind another process may take that port. Only then (ports picked here) is a new pick tried."""
        opts = self.opts
        picked = opts.temporal_port == 0 or opts.ui_port == 0
        for attempt in range(1, PORT_ATTEMPTS + 1):
            temporal = TemporalDevServer(
                TemporalOptions(
                    ip=HOST,
                    port=port_or_free(opts.temporal_port),
                    ui_port=None if opts.ui_port is None else port_or_free(opts.ui_port),
                    db_file=self.state_dir / "temporal.db",
                    log_file=self.state_dir / "temporal.log",
                    extra_args=opts.temporal_args,
                )
            )
            try:
                await temporal.start()
            except BaseException as exc:
                await temporal.stop()
                lost_race = isinstance(exc, ChildExited) and ADDRESS_IN_USE in temporal.process.output()
                if not (picked and lost_race) or attempt == PORT_ATTEMPTS:
                    raise
                print(f"devnet: {exc.args[0].splitlines()[0]}: a port was taken; new ports", file=sys.stderr)
                continue
            break
        self._stack.push_async_callback(temporal.stop)
        self.children.append(temporal.process)
        self.temporal = temporal
        return temporal

    def _saved_height(self) -> int:
        try:
            return int((self.state_dir / CHAIN_HEIGHT).read_text())
        except (OSError, ValueError):
            return 0

    def _save_height(self) -> None:
        if self.chain is not None:
            atomic_write(self.state_dir / CHAIN_HEIGHT, str(self.chain.height))

    async def restart_temporal(self) -> None:
        """Stop the Temporal dev server and start it again on the same port and SQLite file (fault tests)."""
        assert self.temporal is not None
        await self.temporal.stop()
        await self.temporal.start()

    def _operator_of(self, moniker: str) -> str:
        assert self.chain is not None
        return next(v.operator_address for v in self.chain.state().validators if v.moniker == moniker)

    def settings_for(self, info: ClusterInfo) -> dict[str, str]:
        """The settings of DESIGN.md for one cluster's peersync processes."""
        assert self.manifest is not None
        return {
            "TEMPORAL_ADDRESS": self.manifest.temporal_address,
            "TEMPORAL_NAMESPACE": self.manifest.temporal_namespace,
            "KUBECONFIG": str(info.worker_kubeconfig or info.kubeconfig),
            "PEERSYNC_CLUSTER_ID": info.id,
            "PEERSYNC_LOCAL_VALIDATOR": info.local_validator,
            "PEERSYNC_CHAIN_RPC_URL": self.manifest.chain_rpc_url,
            "PEERSYNC_CHAIN_REST_URL": self.manifest.chain_rest_url,
            "PEERSYNC_BECH32_PREFIX": self.manifest.bech32_prefix,
            "PEERSYNC_ENDPOINT_ALLOW_CIDRS": ",".join(self.manifest.allow_cidrs),
            "PEERSYNC_MAX_PARALLEL_ROLLOUTS": "1",
            "PEERSYNC_REQUIRE_APPROVAL": "true" if self.opts.require_approval else "false",
            "PEERSYNC_REGISTRY_REFRESH": self.opts.registry_refresh,
        }

    async def _start_services(self, info: ClusterInfo) -> None:
        assert self.manifest is not None
        for service in self.opts.services:
            env = self.settings_for(info)
            if service == "watch":
                # Its /healthz is how `ready` learns that the watcher is subscribed.
                env["PEERSYNC_METRICS_ADDRESS"] = f"{HOST}:{free_port(HOST)}"
                self.health_urls[f"{service}-{info.id}"] = f"http://{env['PEERSYNC_METRICS_ADDRESS']}/healthz"
            child = ChildProcess(
                f"{service}-{info.id}",
                [sys.executable, "-m", "workers.cli", service],
                log_file=self.state_dir / f"{service}-{info.id}.log",
                env=env,
            )
            self.children.append(child)
            await self._enter(child)
            self.manifest.services[child.name] = child.pid or 0

    async def _check_answers(self) -> None:
        """Every part must answer over its real protocol before the devnet calls itself ready."""
        assert self.manifest is not None
        urls = [
            f"{self.manifest.chain_rpc_url}/status",
            f"{self.manifest.chain_rest_url}/cosmos/staking/v1beta1/validators",
        ]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for url in urls:
                async with session.get(url) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"{url} answered HTTP {resp.status}")
            for info in self.manifest.clusters:
                await self._kube_answers(session, info)
        for child in self.children:
            child.raise_if_exited()
        if "worker" in self.opts.services:
            for info in self.manifest.clusters:
                try:
                    async with asyncio.timeout(SERVICE_READY_TIMEOUT):
                        await self._registry_refreshed(info.id)
                except TimeoutError:
                    raise RuntimeError(
                        f"registry-{info.id} has not refreshed after {SERVICE_READY_TIMEOUT:.0f}s "
                        f"(log {self.state_dir}/worker-{info.id}.log)"
                    ) from None
        for name, url in self.health_urls.items():
            try:
                async with asyncio.timeout(SERVICE_READY_TIMEOUT):
                    await self._subscribed(name, url)
            except TimeoutError:
                raise RuntimeError(
                    f"{name} is not subscribed to the chain after {SERVICE_READY_TIMEOUT:.0f}s "
                    f"({url}; log {self.state_dir / name}.log)"
                ) from None

    async def _registry_refreshed(self, cluster_id: str) -> None:
        """Wait until the cluster's registry has read the chain once: it is the one writer of intent, and a
        move it has not yet seen a baseline for would become that baseline (repaired by its first drift check,
        not by a change). So `ready` means a move from now on is a change."""
        assert self.manifest is not None
        client = await Client.connect(self.manifest.temporal_address, data_converter=pydantic_data_converter)
        handle = client.get_workflow_handle(registry_id(cluster_id))
        while True:
            for child in self.children:
                child.raise_if_exited()
            try:
                stats = await handle.query(RegistryWorkflow.stats, rpc_timeout=timedelta(seconds=2))
                if stats.refreshes >= 1:
                    return
            except (RPCError, WorkflowQueryFailedError):
                pass  # no registry yet, or no worker polls yet
            await asyncio.sleep(HEALTH_POLL_SECONDS)

    async def _subscribed(self, name: str, url: str) -> None:
        """Wait until a watcher's /healthz answers 200: subscribed, so no tx from now on passes unseen."""
        child = next(c for c in self.children if c.name == name)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                child.raise_if_exited()
                try:
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass  # not serving yet
                await asyncio.sleep(HEALTH_POLL_SECONDS)

    async def _enter(self, service: Any) -> None:
        """Start `service` (anything with start/stop) and stop it with the devnet."""
        await service.start()
        self._stack.push_async_callback(service.stop)

    async def stop(self) -> None:
        (self.state_dir / READY).unlink(missing_ok=True)
        await self._stack.aclose()

    async def run_until_stopped(self) -> int:
        """Serve until SIGINT/SIGTERM, or until a supervised child dies (then exit non-zero)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waits = [asyncio.ensure_future(stop.wait())]
        waits += [asyncio.ensure_future(child.wait()) for child in self.children]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        died = [c for c in self.children if c.proc is not None and c.proc.returncode is not None]
        await self.stop()
        if died and not stop.is_set():
            print(f"devnet: {died[0].name} exited with {died[0].proc.returncode}; stopped", file=sys.stderr)  # type: ignore[union-attr]
            return 1
        return 0
