"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok with a few fake Nodes, all built by `make testbed` (issue 10, item 2).

    async with RealKube(state_dir) as kube:
        kube.url, kube.kubeconfig, kube.ca_file   # admin (system:masters) access over TLS

Everything (etcd data, certs, kubeconfigs, logs) lives under `state_dir`; every port is free and on 127.0.0.1;
every process dies with this one (devnet.processes.ChildProcess). Ready means: /readyz ok, the `default`
ServiceAccount exists in `default` (the controller manager's serviceaccount controller runs) and every Node
is Ready (kwok manages them). Pods are scheduled by the real scheduler, made Running/Ready by kwok, and
terminate gracefully (see devnet.real.kwok_stages).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import yaml
from pydantic import BaseModel

from devnet.ports import free_port
from devnet.processes import ChildProcess
from devnet.real.binaries import Manifest, binary, load_manifest
from devnet.real.kwok_stages import NODE_ANNOTATION, NODE_ANNOTATION_VALUE, STAGES
from devnet.real.pki import CertificateAuthority, KeyPair, service_account_keys

HOST = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"  # only ever allocated, never routed: nothing here dials a Service IP
AUDIT_LOG = "audit.log"
# Writes of what peersync writes, with the resulting object (a test's write log, devnet.real.world); every
# other request with its metadata only (who, what, the authorizer's decision).
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  verbs: [create, update, patch, delete]
  resources:
  - group: ""
    resources: [configmaps]
  - group: apps
    resources: [deployments, statefulsets]
- level: Metadata
"""
START_TIMEOUT = 90.0  # a cold start on 2 busy cores is ~10-20 s; the margin is for CI neighbours


class RealKubeInfo(BaseModel):
    url: str
    kubeconfig: Path  # admin: CN=kubernetes-admin, O=system:masters
    ca_file: Path
    state_dir: Path
    kubectl: Path
    etcd_url: str
    nodes: list[str]
    startup_seconds: float

    @property
    def audit_log(self) -> Path:
        """The apiserver's audit log: one JSON event per request, with the authorizer's decision."""
        return self.state_dir / "logs" / AUDIT_LOG


def write_kubeconfig(path: Path, url: str, ca: Path, pair: KeyPair, user: str) -> Path:
    """A kubeconfig with file references (not embedded data), so a reader can see which cert is whose."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "real", "cluster": {"server": url, "certificate-authority": str(ca)}}],
        "users": [
            {"name": user, "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}
        ],
        "contexts": [{"name": "real", "context": {"cluster": "real", "user": user}}],
        "current-context": "real",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def fake_node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: NODE_ANNOTATION_VALUE},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
        },
    }


class RealKube:
    def __init__(self, state_dir: Path, nodes: int = 3, manifest: Manifest | None = None) -> None:
        self.state_dir = state_dir
        self.node_names = [f"kwok-node-{i}" for i in range(nodes)]
        self._manifest = manifest or load_manifest()
        self._children: list[ChildProcess] = []
        self._session: aiohttp.ClientSession | None = None
        self.info: RealKubeInfo | None = None

    def _bin(self, name: str) -> str:
        return str(binary(name, self._manifest))

    async def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ChildProcess:
        child = ChildProcess(name, argv, self.state_dir / "logs" / f"{name}.log", env)
        await child.start()
        self._children.append(child)
        return child

    async def _until(self, what: str, check: Any, deadline: float) -> None:
        """Wait for `check()` to be truthy; a child that exits meanwhile fails at once, with its log's head."""
        last: object = None
        while True:
            for child in self._children:
                child.raise_if_exited()
            try:
                if await check():
                    return
            except (aiohttp.ClientError, OSError) as exc:
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"real kube: timed out waiting for {what}; last error: {last!r}")
            await asyncio.sleep(0.2)

    async def _get(self, url: str) -> tuple[int, str]:
        assert self._session is not None
        async with self._session.get(url) as response:
            body = await response.text()
            return response.status, body

    async def __aenter__(self) -> RealKubeInfo:
        try:
            return await self._start()
        except BaseException:
            await self._stop()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _start(self) -> RealKubeInfo:
        started = time.monotonic()
        deadline = started + START_TIMEOUT
        root = self.state_dir
        for folder in ("logs", "kwok-home"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        pki = root / "pki"
        ca = CertificateAuthority(pki)
        serving = ca.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ips=(HOST, "10.96.0.1"),
        )
        sa = service_account_keys(pki)
        etcd_port, etcd_peer, api_port, kcm_port, sched_port = (free_port(HOST) for _ in range(5))
        etcd_url, url = f"http://{HOST}:{etcd_port}", f"https://{HOST}:{api_port}"

        kubeconfigs: dict[str, Path] = {}
        for who, cn, org in (
            ("admin", "kubernetes-admin", "system:masters"),
            ("controller-manager", "system:kube-controller-manager", None),
            ("scheduler", "system:kube-scheduler", None),
            # kwok plays every node's kubelet; the Node authorizer would confine a system:node:<name> cert
            # to one node, so kwok (like kwokctl's clusters) runs as an admin of its own name.
            ("kwok", "kwok-controller", "system:masters"),
        ):
            kubeconfigs[who] = write_kubeconfig(
                root / f"{who}.kubeconfig", url, ca.pair.cert, ca.issue(who, cn, org), cn
            )

        ssl_context = ssl.create_default_context(cafile=str(ca.pair.cert))
        admin = ca.issue("admin-probe", "kubernetes-admin", "system:masters")
        ssl_context.load_cert_chain(str(admin.cert), str(admin.key))
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context))

        # etcd: fsync off because a test cluster's data is thrown away and fsync dominates on shared CI disks.
        await self._spawn(
            "etcd",
            [
                self._bin("etcd"),
                "--name=real",
                f"--data-dir={root / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://{HOST}:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://{HOST}:{etcd_peer}",
                f"--initial-cluster=real=http://{HOST}:{etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        await self._until("etcd /health", lambda: self._ok(f"{etcd_url}/health", '"health":"true"'), deadline)

        await self._spawn(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={api_port}",
                f"--cert-dir={root / 'apiserver-certs'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={ca.pair.cert}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-issuer={url}",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # Endpoints validation refuses loopback IPs, so the `kubernetes` Service's endpoints reconciler
                # would log errors every 10 s for an apiserver on 127.0.0.1; nothing here uses that Service.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                # Every request's metadata, with the authorizer's decision: how a test reads the 403s the
                # real RBAC gave (RealKubeInfo.audit_log, devnet.real.audit).
                f"--audit-policy-file={self._audit_policy(root)}",
                f"--audit-log-path={root / 'logs' / AUDIT_LOG}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            ],
        )
        await self._until("kube-apiserver /readyz", lambda: self._ok(f"{url}/readyz", "ok"), deadline)

        common = ["--leader-elect=false", f"--bind-address={HOST}", "--profiling=false"]
        kcm = kubeconfigs["controller-manager"]
        await self._spawn(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                *common,
                f"--secure-port={kcm_port}",
                f"--cert-dir={root / 'kcm-certs'}",
                f"--kubeconfig={kcm}",
                f"--authentication-kubeconfig={kcm}",
                f"--authorization-kubeconfig={kcm}",
                "--use-service-account-credentials",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={ca.pair.cert}",
                f"--cluster-signing-cert-file={ca.pair.cert}",
                f"--cluster-signing-key-file={ca.pair.key}",
            ],
        )
        sched = kubeconfigs["scheduler"]
        await self._spawn(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                *common,
                f"--secure-port={sched_port}",
                f"--kubeconfig={sched}",
                f"--authentication-kubeconfig={sched}",
                f"--authorization-kubeconfig={sched}",
            ],
        )
        stages = root / "kwok.yaml"
        stages.write_text(STAGES)
        await self._spawn(
            "kwok",
            [
                self._bin("kwok"),
                f"--kubeconfig={kubeconfigs['kwok']}",
                f"--config={stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}={NODE_ANNOTATION_VALUE}",
                f"--node-ip={HOST}",
                "--cidr=10.244.0.0/16",
            ],
            env={"HOME": str(root / "kwok-home")},  # kwok looks for ~/.kwok: keep it inside the state dir
        )
        for name in self.node_names:
            await self._post(f"{url}/api/v1/nodes", fake_node(name))

        await self._until(
            "the default ServiceAccount",
            lambda: self._ok(f"{url}/api/v1/namespaces/default/serviceaccounts/default", '"default"'),
            deadline,
        )
        await self._until("every Node Ready", lambda: self._nodes_ready(url), deadline)
        self.info = RealKubeInfo(
            url=url,
            kubeconfig=kubeconfigs["admin"],
            ca_file=ca.pair.cert,
            state_dir=root,
            kubectl=binary("kubectl", self._manifest),
            etcd_url=etcd_url,
            nodes=self.node_names,
            startup_seconds=round(time.monotonic() - started, 2),
        )
        return self.info

    @staticmethod
    def _audit_policy(root: Path) -> Path:
        path = root / "audit-policy.yaml"
        path.write_text(AUDIT_POLICY)
        return path

    async def _ok(self, url: str, expect: str) -> bool:
        status, body = await self._get(url)
        return status == 200 and expect in body

    async def _post(self, url: str, obj: dict[str, Any]) -> None:
        assert self._session is not None
        async with self._session.post(url, json=obj) as response:
            if response.status not in (200, 201):
                raise RuntimeError(f"real kube: POST {url} -> {response.status}: {await response.text()}")

    async def _nodes_ready(self, url: str) -> bool:
        assert self._session is not None
        async with self._session.get(f"{url}/api/v1/nodes") as response:
            nodes = (await response.json())["items"]
        ready = {
            n["metadata"]["name"]
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        }
        return ready >= set(self.node_names)

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        # Clients first, etcd last, so nothing logs a storm of connection errors on the way down.
        for child in reversed(self._children):
            await child.stop(grace=5.0)
        self._children.clear()
