"""What peersync writes to a cluster and how it reads what it finds: pure builders, no client, no I/O.

Each function takes plain data (the apiserver's objects as dicts, as `sanitize_for_serialization` gives
them, or pydantic models) and returns the content to send or the answer to act on; `kube_ops.Kube` is
the thin control that reads, calls these and sends (cosmos-operator's internal/ split: builders apart
from the controls that touch the cluster). Keeping them apart lets the hostile parts (an operator's
ConfigMap and annotations) be tested exhaustively without a cluster. Rollout verdicts live beside this
module in `rollout_status`, the double-signing judge in `workload_safety`; both are pure too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from activities.rollout_status import RolloutVerdict, verdict
from activities.workload_safety import restart_refusal
from core.peer_formats import ConsumerLayout, LayoutError, ReadResult, read_peers, write_peers
from core.peers import Peer, parse_peer, peer_set_hash

CLUSTER_LABEL = "peersync.io/cluster"
CHAIN_LABEL = "peersync.io/chain-id"
CONSUMER_LABEL = "peersync.io/consumer-id"
HASH_ANNOTATION = "peersync.io/peers-hash"
# On the ConfigMap: the node ids of the entries peersync wrote last (sorted, comma separated).
MANAGED_ANNOTATION = "peersync.io/managed-peers"
# On the ConfigMap: the peer set its pods were last seen rolled out onto, so a drift check reads one object.
ROLLED_ANNOTATION = "peersync.io/rolled-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FIELD_MANAGER = "peersync"


class NotManagedError(RuntimeError):
    """The namespace is not labelled for this cluster (or does not exist): hands off."""


class WorkloadRefusedError(RuntimeError):
    """The workload cannot be rolled out by us: missing, paused, or OnDelete."""


class RolloutFailedError(RuntimeError):
    pass


class ManagedNamespace(BaseModel):
    name: str
    chain_id: str
    consumer_id: str
    layout: ConsumerLayout


class ConfigMapPeers(BaseModel):
    namespace: str
    layout: ConsumerLayout
    peers: list[str]  # peersync's entries (canonical), in document order
    problems: list[str]  # what is wrong with the document itself; a write repairs or refuses it
    kept: list[str] = []  # the operator's entries, exactly as written
    unreadable: list[str] = []  # why some of the operator's entries do not parse (kept, only reported)
    all_peers: list[str] = []  # every entry that parses, peersync's and the operator's, in document order
    peers_hash: str  # of peersync's entries
    configmap_hash: str | None
    rolled_hash: str | None

    @property
    def running_hash(self) -> str | None:
        """The peer set the pods run, as far as the ConfigMap tells: the one recorded after the last rollout;
        for a ConfigMap peersync never wrote, the one it holds. Adopting a consumer that way costs no restart:
        its pods were started on this ConfigMap, as operators restart after every hand edit."""
        if self.rolled_hash is not None:
            return self.rolled_hash
        if self.configmap_hash is None and not self.problems:
            return self.peers_hash
        return None


class AppliedPeers(ConfigMapPeers):
    workload_hash: str | None


class WriteOutcome(BaseModel):
    written: bool
    peers_hash: str  # of peersync's entries
    resource_version: str
    all_peers: list[str] = []  # the whole resulting list that parses (what a live dial must hand the node)


class RestartOutcome(BaseModel):
    restarted: bool
    generation: int
    message: str


class ConfigMapEdit(BaseModel):
    """The ConfigMap content a peers write sends; `changed` False when the ConfigMap is already so."""

    changed: bool
    data: dict[str, str]
    annotations: dict[str, str]
    peers_hash: str  # of peersync's entries
    all_peers: list[str]  # every entry of the resulting list that parses


# ---- namespaces ------------------------------------------------------------------------------------------


def cluster_selector(cluster_id: str) -> str:
    return f"{CLUSTER_LABEL}={cluster_id}"


def labelled_for(labels: Mapping[str, str] | None, cluster_id: str) -> bool:
    """Whether a namespace carries this cluster's label (DESIGN invariant 9: no label, hands off)."""
    return (labels or {}).get(CLUSTER_LABEL) == cluster_id


def managed_namespace(
    name: str, labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None
) -> ManagedNamespace:
    """The namespace as peersync uses it; LayoutError when its labels or annotations are unusable."""
    labels = labels or {}
    chain_id = labels.get(CHAIN_LABEL)
    if not chain_id:
        raise LayoutError(f"namespace {name} has no {CHAIN_LABEL} label")
    layout = ConsumerLayout.from_annotations(chain_id, annotations)
    return ManagedNamespace(
        name=name, chain_id=chain_id, consumer_id=labels.get(CONSUMER_LABEL, ""), layout=layout
    )


# ---- the ConfigMap ---------------------------------------------------------------------------------------


def owned_ids(found: ReadResult, notes: Mapping[str, str], desired_ids: set[str]) -> set[str]:
    """The node ids whose entries are peersync's: the desired ones, and those it recorded at its last write.

    A ConfigMap written before peersync recorded ids was wholly peersync's when its peers-hash annotation
    still matches its whole list (that version owned the whole value); otherwise, with nothing recorded,
    only the desired ids are known to be peersync's and everything else stays."""
    recorded = notes.get(MANAGED_ANNOTATION)
    if recorded is not None:
        return desired_ids | {node_id for node_id in recorded.split(",") if node_id}
    if found.peers and notes.get(HASH_ANNOTATION) == peer_set_hash(found.peers):
        return desired_ids | {p.node_id for p in found.peers}
    return desired_ids


def configmap_peers(
    ns: ManagedNamespace,
    data: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
    desired: Iterable[str] = (),
) -> ConfigMapPeers:
    """The ConfigMap's peers split into peersync's and the operator's.

    `desired`: the peers peersync wants now; their node ids are peersync's even where it never wrote them
    (a ConfigMap it adopts)."""
    found = read_peers(ns.layout.format, (data or {}).get(ns.layout.key, ""))
    notes = annotations or {}
    ours = owned_ids(found, notes, {parse_peer(p).node_id for p in desired})
    peers = [p.render() for p in found.owned(ours)]
    return ConfigMapPeers(
        namespace=ns.name,
        layout=ns.layout,
        peers=peers,
        problems=found.document_problems,
        kept=[entry.text for entry in found.kept(ours)],
        unreadable=found.unreadable,
        all_peers=[p.render() for p in found.peers],
        peers_hash=peer_set_hash(peers),
        configmap_hash=notes.get(HASH_ANNOTATION),
        rolled_hash=notes.get(ROLLED_ANNOTATION),
    )


def applied_peers(configmap: ConfigMapPeers, workload: Mapping[str, Any]) -> AppliedPeers:
    """The ConfigMap's peers and the peer set the workload's pods run."""
    # What the pods run: the set recorded once a rollout (or a live dial) completed; else the one a restart
    # put on the pod template; else, never touched by peersync, the ConfigMap's own (running_hash).
    running = configmap.rolled_hash or template_hash(workload) or configmap.running_hash
    return AppliedPeers(**configmap.model_dump(), workload_hash=running)


def rolled_annotations(annotations: Mapping[str, str] | None, peers_hash: str) -> dict[str, str] | None:
    """The ConfigMap's annotations recording that its pods run `peers_hash`; None when they already do."""
    notes = dict(annotations or {})
    if notes.get(ROLLED_ANNOTATION) == peers_hash:
        return None
    notes[ROLLED_ANNOTATION] = peers_hash
    return notes


def peers_edit(
    layout: ConsumerLayout,
    data: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
    peers: list[Peer],
) -> ConfigMapEdit:
    """The ConfigMap content making `peers` peersync's entries, every operator entry kept byte for byte."""
    wanted_hash = peer_set_hash(peers)
    wanted_ids = {p.node_id for p in peers}
    new_data = dict(data or {})
    notes = dict(annotations or {})
    text = new_data.get(layout.key, "")
    # Entries peersync wrote before and no longer wants (a validator that left) go; nothing else does.
    recorded = owned_ids(read_peers(layout.format, text), notes, set())
    new_text = write_peers(layout.format, text, peers, recorded)
    all_peers = [p.render() for p in read_peers(layout.format, new_text).peers]
    # Already so (a ConfigMap of an earlier version whose ids follow from its hash counts too).
    if new_text == text and notes.get(HASH_ANNOTATION) == wanted_hash and recorded == wanted_ids:
        return ConfigMapEdit(
            changed=False, data=new_data, annotations=notes, peers_hash=wanted_hash, all_peers=all_peers
        )
    new_data[layout.key] = new_text
    notes[HASH_ANNOTATION] = wanted_hash
    notes[MANAGED_ANNOTATION] = ",".join(sorted(wanted_ids))
    return ConfigMapEdit(
        changed=True, data=new_data, annotations=notes, peers_hash=wanted_hash, all_peers=all_peers
    )


# ---- the workload ----------------------------------------------------------------------------------------


def _spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    return workload.get("spec") or {}


def template_hash(workload: Mapping[str, Any]) -> str | None:
    """The peer-set hash a restart put on the workload's pod template, if any."""
    template = _spec(workload).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)


def restart_refused(layout: ConsumerLayout, workload: Mapping[str, Any]) -> str | None:
    """Why peersync must not restart this workload (None: it may), in the order a restart checks them."""
    spec = _spec(workload)
    # Before anything else: a restart that would run two signers with one key is never made.
    refusal = restart_refusal(layout.workload_kind, layout.workload_name, spec, layout.signer)
    if refusal is not None:
        return refusal
    if layout.workload_kind == "deployment" and spec.get("paused"):
        return f"{layout.workload} is paused (run `kubectl rollout resume` first)"
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if layout.workload_kind == "statefulset" and strategy != "RollingUpdate":
        return f"{layout.workload} uses updateStrategy {strategy}: it never restarts pods"
    return None


def generation(workload: Mapping[str, Any]) -> int:
    return int((workload.get("metadata") or {}).get("generation", 0))


def restart_patch(peers_hash: str, restarted_at: str) -> dict[str, Any]:
    """The strategic-merge patch that rolls a workload onto `peers_hash` (as `kubectl rollout restart`,
    keyed on the hash so that sending it twice changes nothing)."""
    annotations = {HASH_ANNOTATION: peers_hash, RESTARTED_AT: restarted_at}
    return {"spec": {"template": {"metadata": {"annotations": annotations}}}}


def replicas(workload: Mapping[str, Any]) -> int:
    """The workload's desired number of pods (spec.replicas; the apiserver defaults it to 1)."""
    value = _spec(workload).get("replicas")
    return 1 if value is None else int(value)


def pod_selector(layout: ConsumerLayout, workload: Mapping[str, Any]) -> str:
    """The label selector of the workload's pods, from its matchLabels."""
    labels = (_spec(workload).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        raise WorkloadRefusedError(f"{layout.workload} has no matchLabels selector to find its pods")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_rpc_urls(pods: Iterable[Mapping[str, Any]], port: int) -> list[str]:
    """CometBFT RPC base URLs of the pods that are ready and not terminating (their pod IP, `port`)."""
    return sorted(
        rpc_url(pod["status"]["podIP"], port)
        for pod in pods
        if (pod.get("metadata") or {}).get("deletionTimestamp") is None
        and (pod.get("status") or {}).get("podIP")
        and _ready(pod)
    )


def rpc_url(pod_ip: str, port: int) -> str:
    """The apiserver's pod IP, checked to be an IP literal before it becomes part of a URL."""
    address = ipaddress.ip_address(pod_ip)
    # Python accepts an IPv6 zone of almost any characters ("::1%@x"); the apiserver never gives a pod one,
    # and inside a URL it would be a host of its own making.
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ValueError(f"pod IP {pod_ip!r} carries an IPv6 zone")
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}:{port}"


def watched_verdict(layout: ConsumerLayout, event_type: str, obj: Mapping[str, Any]) -> RolloutVerdict | None:
    """The rollout verdict a watch event of the workload brings; None for events that carry none."""
    if event_type == "DELETED":
        raise WorkloadRefusedError(f"{layout.workload} was deleted during the rollout")
    if event_type not in ("ADDED", "MODIFIED"):
        return None
    return verdict(layout.workload_kind, dict(obj))
