"""The devnet's link between its two emulators: a consumer pod replaced in the kube emulator is a restart of
the chain emulator's node that the pod stands for, which then catches up with the chain for a while.

The pods of a devnet workload report the validator's node host as their IP (devnet.world), so a pod of
namespace N (label peersync.io/chain-id C) with IP H is the node of chain C at H. A restart is a pod of a
NEW revision of the workload turning Ready: the first revision seen Ready is the seeded, synced node; a
second replica of the same revision (scale up, StatefulSet ordinals) is no restart.
"""

from __future__ import annotations

import logging
from typing import Any

from devnet.chain.nodes import NodeFleet
from devnet.kube.pods import is_ready
from devnet.kube.server import KubeEmulator
from devnet.kube.watch import Event

log = logging.getLogger(__name__)

CHAIN_LABEL = "peersync.io/chain-id"
# The revision of a pod's template: Deployment pods carry the first, StatefulSet pods the second.
REVISION_LABELS = ("pod-template-hash", "controller-revision-hash")


def _revision(pod: dict[str, Any]) -> str | None:
    labels = pod["metadata"].get("labels") or {}
    return next((labels[k] for k in REVISION_LABELS if k in labels), None)


class NodeRestarts:
    """A kube store listener (KubeEmulator.store.add_listener) that tells the node fleet about restarts."""

    def __init__(self, kube: KubeEmulator, nodes: NodeFleet) -> None:
        self.kube = kube
        self.nodes = nodes
        self._revisions: dict[str, str] = {}  # namespace -> revision of its pods last seen turning Ready
        self.restarts: list[tuple[str, str]] = []  # (namespace, pod name) of every restart seen, in order

    def __call__(self, event: Event) -> None:
        if event.rt.kind != "Pod" or event.type == "DELETED":
            return
        pod = event.new.obj
        if not is_ready(pod) or (event.old is not None and is_ready(event.old.obj)):
            return  # only the moment a pod turns Ready
        revision = _revision(pod)
        namespace = event.new.namespace
        previous = self._revisions.get(namespace)
        self._revisions[namespace] = revision or ""
        if previous is None or previous == revision:
            return
        host = (pod.get("status") or {}).get("podIP")
        ns = self.kube.get("Namespace", "", namespace)
        chain_id = ((ns or {}).get("metadata", {}).get("labels") or {}).get(CHAIN_LABEL)
        if not host or not chain_id:
            return
        self.restarts.append((namespace, event.new.name))
        if self.nodes.restarted(host, chain_id) is not None:
            log.info(
                "pod %s/%s replaced: node %s of %s catches up", namespace, event.new.name, host, chain_id
            )
