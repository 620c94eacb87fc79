"""The real testbed's link between a cluster and the real consumer nodes, as devnet.node_restarts is the
emulated one's: a pod of a NEW revision of a workload turning Ready is a restart of the cometbft node the pod
stands for (kwok reports the pod at its node's host, devnet.real.kwok_stages), and the restarted node reads its
peers from the ConfigMap as it is now, as a real pod's init container would (devnet.world's init.sh).

Only loopback peers reach a node's config: an operator's sentry at a public address stays in the ConfigMap
(peersync keeps it) but no test node ever dials off this machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from core.peer_formats import read_peers
from devnet.node_restarts import CHAIN_LABEL, REVISION_LABELS
from devnet.real.nodes import RealConsumerNodes

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25


def _ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status is None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _revision(pod: Any) -> str:
    labels = pod.metadata.labels or {}
    return next((labels[k] for k in REVISION_LABELS if k in labels), "")


def loopback_peers(entries: list[str]) -> list[str]:
    """The `id@host:port` entries whose host is a loopback IPv4/IPv6 literal."""
    kept = []
    for entry in entries:
        host = entry.rpartition("@")[2].rpartition(":")[0].strip("[]")
        try:
            if ipaddress.ip_address(host).is_loopback:
                kept.append(entry)
        except ValueError:
            continue  # a name: never resolved here
    return kept


class RealNodeRestarts:
    """Polls the pods of a cluster's consumer namespaces and restarts the node of each replaced pod."""

    def __init__(self, kubeconfig: Path, nodes: RealConsumerNodes, namespaces: list[str]) -> None:
        self.core = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=str(kubeconfig)))
        self.nodes = nodes
        self.namespaces = namespaces
        self._revisions: dict[str, str] = {}  # namespace -> revision of its pods last seen Ready
        self._ready: set[str] = set()  # uids of pods already seen Ready
        self.restarts: list[tuple[str, str]] = []  # (namespace, pod name), in order

    def _replaced(self) -> list[tuple[str, str, str]]:
        """(namespace, chain id, pod IP) of each pod that turned Ready with a new revision since last call."""
        found = []
        for namespace in self.namespaces:
            chain_id = (self.core.read_namespace(namespace).metadata.labels or {}).get(CHAIN_LABEL)
            for pod in self.core.list_namespaced_pod(namespace).items:
                if not _ready(pod) or pod.metadata.uid in self._ready:
                    continue
                self._ready.add(pod.metadata.uid)
                revision, previous = _revision(pod), self._revisions.get(namespace)
                self._revisions[namespace] = revision
                if previous is not None and previous != revision and chain_id and pod.status.pod_ip:
                    self.restarts.append((namespace, pod.metadata.name))
                    found.append((namespace, chain_id, pod.status.pod_ip))
        return found

    def _peers(self, namespace: str) -> list[str]:
        notes = self.core.read_namespace(namespace).metadata.annotations or {}
        cm = self.core.read_namespaced_config_map(notes["peersync.io/configmap"], namespace)
        text = (cm.data or {}).get(notes["peersync.io/peers-key"], "")
        read = read_peers(notes["peersync.io/peers-format"], text)  # type: ignore[arg-type]
        return loopback_peers([e.text for e in read.entries if e.peer is not None])

    async def run(self) -> None:
        while True:
            for namespace, chain_id, host in await asyncio.to_thread(self._replaced):
                node = self.nodes.at(host, chain_id)
                if node is None:
                    continue
                try:
                    peers = await asyncio.to_thread(self._peers, namespace)
                    log.info("pod of %s replaced: node %s/%s restarts", namespace, node.moniker, chain_id)
                    await self.nodes.restart(node.moniker, chain_id, peers)
                except Exception:  # one node failing to restart must not stop the others' restarts
                    log.exception("restarting node %s/%s failed", node.moniker, chain_id)
            await asyncio.sleep(POLL_SECONDS)
