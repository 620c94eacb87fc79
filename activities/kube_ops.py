"""What peersync does to a cluster, with the official (synchronous) kubernetes client.

Every operation is idempotent: the ConfigMap write compares first and carries the resourceVersion it
read (409 → re-read, `retry_on_conflict`); the restart is keyed on the peer-set hash in the pod template,
so replaying it changes nothing; the rollout wait only reads. A worker never touches a namespace that
lacks its own `peersync.io/cluster` label (DESIGN invariant 9).

The operator's peers are theirs (invariant 14, rule in peer_formats): each write records on the ConfigMap
the node ids of the entries peersync wrote (`peersync.io/managed-peers`), so that a validator that leaves is
removed later while a sentry is never touched. `peersync.io/peers-hash` (and the pod template's copy, and
`peersync.io/rolled-hash`) is the hash of peersync's entries only: an operator who edits their own entries
restarts their pods as they always did, and peersync restarts nothing for it; when peersync restarts for
its own entries, the pods read the whole ConfigMap, operator entries included.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import retry_on_conflict
from pydantic import BaseModel

from activities.peer_formats import ConsumerLayout, LayoutError, ReadResult, read_peers, write_peers
from activities.peers import parse_peer, peer_set_hash
from activities.rollout_status import RolloutVerdict, verdict
from activities.workload_safety import restart_refusal

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


class UnusableNamespace(NamedTuple):
    """A namespace labelled for this cluster that peersync cannot use as it is."""

    name: str
    reason: str
    chain_id: str | None  # its chain-id label, when it has one: that chain is not "not run here"


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


def api_client(kubeconfig: Path | None) -> k8s.ApiClient:
    """A client of its own (never the global default), from a kubeconfig or the in-cluster service account."""
    if kubeconfig is not None:
        return k8s_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except k8s_config.ConfigException:
        return k8s_config.new_client_from_config()


class Kube:
    """The operations of one worker on one cluster."""

    def __init__(self, api: k8s.ApiClient, cluster_id: str) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.apps = k8s.AppsV1Api(api)
        self.cluster_id = cluster_id

    # ---- namespaces ----------------------------------------------------------------------------------

    def _managed(self, ns: k8s.V1Namespace) -> ManagedNamespace:
        labels = ns.metadata.labels or {}
        chain_id = labels.get(CHAIN_LABEL)
        if not chain_id:
            raise LayoutError(f"namespace {ns.metadata.name} has no {CHAIN_LABEL} label")
        layout = ConsumerLayout.from_annotations(chain_id, ns.metadata.annotations)
        return ManagedNamespace(
            name=ns.metadata.name,
            chain_id=chain_id,
            consumer_id=labels.get(CONSUMER_LABEL, ""),
            layout=layout,
        )

    def managed_namespaces(self) -> tuple[list[ManagedNamespace], list[UnusableNamespace]]:
        """Namespaces labelled for this cluster, and those whose labels or annotations are unusable."""
        found = self.core.list_namespace(label_selector=f"{CLUSTER_LABEL}={self.cluster_id}").items
        good, bad = [], []
        for ns in found:
            try:
                good.append(self._managed(ns))
            except LayoutError as exc:
                chain_id = (ns.metadata.labels or {}).get(CHAIN_LABEL)
                bad.append(UnusableNamespace(ns.metadata.name, str(exc), chain_id))
        return good, bad

    def managed_namespace(self, name: str) -> ManagedNamespace:
        try:
            ns = self.core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                raise NotManagedError(f"namespace {name} does not exist") from None
            raise
        if (ns.metadata.labels or {}).get(CLUSTER_LABEL) != self.cluster_id:
            raise NotManagedError(f"namespace {name} is not labelled {CLUSTER_LABEL}={self.cluster_id}")
        return self._managed(ns)

    # ---- peers in the ConfigMap ----------------------------------------------------------------------

    def read_applied(self, namespace: str, desired: Iterable[str] = ()) -> AppliedPeers:
        return self.read_applied_in(self.managed_namespace(namespace), desired)

    def read_configmap(self, ns: ManagedNamespace, desired: Iterable[str] = ()) -> ConfigMapPeers:
        """The peers in the namespace's ConfigMap (one GET), split into peersync's and the operator's.

        `desired`: the peers peersync wants now; their node ids are peersync's even where it never wrote
        them (a ConfigMap it adopts)."""
        cm = self.core.read_namespaced_config_map(ns.layout.configmap, ns.name)
        found = read_peers(ns.layout.format, (cm.data or {}).get(ns.layout.key, ""))
        notes = cm.metadata.annotations or {}
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

    def read_applied_in(self, ns: ManagedNamespace, desired: Iterable[str] = ()) -> AppliedPeers:
        """The ConfigMap's peers and the peer set the workload's pods run."""
        template = (self._read_workload(ns).get("spec") or {}).get("template") or {}
        workload_hash = ((template.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
        configmap = self.read_configmap(ns, desired)
        # What the pods run: the set recorded once a rollout (or a live dial) completed; else the one a restart
        # put on the pod template; else, never touched by peersync, the ConfigMap's own (running_hash).
        running = configmap.rolled_hash or workload_hash or configmap.running_hash
        return AppliedPeers(**configmap.model_dump(), workload_hash=running)

    def mark_rolled(self, namespace: str, peers_hash: str) -> bool:
        """Record on the ConfigMap that the pods run `peers_hash` (after a completed rollout); no-op if so."""
        ns = self.managed_namespace(namespace)

        def attempt() -> bool:
            cm = self.core.read_namespaced_config_map(ns.layout.configmap, namespace)
            notes = dict(cm.metadata.annotations or {})
            if notes.get(ROLLED_ANNOTATION) == peers_hash:
                return False
            notes[ROLLED_ANNOTATION] = peers_hash
            cm.metadata.annotations = notes
            self.core.replace_namespaced_config_map(
                ns.layout.configmap, namespace, cm, field_manager=FIELD_MANAGER
            )
            return True

        return retry_on_conflict(attempt)

    def write_peers(self, namespace: str, peers: list[str]) -> WriteOutcome:
        """Make `peers` (canonical, grammar-checked) peersync's entries of the ConfigMap, keeping every entry
        of the operator's byte for byte; no write when already so."""
        ns = self.managed_namespace(namespace)
        parsed = [parse_peer(p) for p in peers]  # refuses anything off-grammar before it can be written
        wanted_hash = peer_set_hash(parsed)
        wanted_ids = {p.node_id for p in parsed}

        def attempt() -> WriteOutcome:
            cm = self.core.read_namespaced_config_map(ns.layout.configmap, namespace)
            data = dict(cm.data or {})
            text = data.get(ns.layout.key, "")
            annotations = dict(cm.metadata.annotations or {})
            # Entries peersync wrote before and no longer wants (a validator that left) go; nothing else does.
            recorded = owned_ids(read_peers(ns.layout.format, text), annotations, set())
            new_text = write_peers(ns.layout.format, text, parsed, recorded)
            all_peers = [p.render() for p in read_peers(ns.layout.format, new_text).peers]
            # Already so (a ConfigMap of an earlier version whose ids follow from its hash counts too).
            if (
                new_text == text
                and annotations.get(HASH_ANNOTATION) == wanted_hash
                and recorded == wanted_ids
            ):
                return WriteOutcome(
                    written=False,
                    peers_hash=wanted_hash,
                    resource_version=cm.metadata.resource_version,
                    all_peers=all_peers,
                )
            data[ns.layout.key] = new_text
            annotations[HASH_ANNOTATION] = wanted_hash
            annotations[MANAGED_ANNOTATION] = ",".join(sorted(wanted_ids))
            cm.data, cm.metadata.annotations = data, annotations
            # replace() carries the resourceVersion we read: a concurrent writer makes this a 409, not a loss.
            out = self.core.replace_namespaced_config_map(
                ns.layout.configmap, namespace, cm, field_manager=FIELD_MANAGER
            )
            return WriteOutcome(
                written=True,
                peers_hash=wanted_hash,
                resource_version=out.metadata.resource_version,
                all_peers=all_peers,
            )

        return retry_on_conflict(attempt)

    # ---- the workload --------------------------------------------------------------------------------

    def _read_workload(self, ns: ManagedNamespace) -> dict[str, Any]:
        name = ns.layout.workload_name
        read = (
            self.apps.read_namespaced_deployment
            if ns.layout.workload_kind == "deployment"
            else self.apps.read_namespaced_stateful_set
        )
        try:
            obj = read(name, ns.name)
        except ApiException as exc:
            if exc.status == 404:
                raise WorkloadRefusedError(f"{ns.layout.workload} not found in namespace {ns.name}") from None
            raise
        return self.api.sanitize_for_serialization(obj)

    def restart_refusal(self, namespace: str) -> str | None:
        """Why a restart of the namespace's workload would be refused (read only, for dry runs); None if safe."""
        return self.restart_refusal_in(self.managed_namespace(namespace))

    def restart_refusal_in(self, ns: ManagedNamespace) -> str | None:
        spec = self._read_workload(ns).get("spec") or {}
        return restart_refusal(ns.layout.workload_kind, ns.layout.workload_name, spec, ns.layout.signer)

    def restart(self, namespace: str, peers_hash: str, restarted_at: str) -> RestartOutcome:
        """Roll the workload onto `peers_hash`; a no-op when its pod template already carries it."""
        ns = self.managed_namespace(namespace)
        obj = self._read_workload(ns)
        spec = obj.get("spec") or {}
        # Before anything else: a restart that would run two signers with one key is never made.
        refusal = restart_refusal(ns.layout.workload_kind, ns.layout.workload_name, spec, ns.layout.signer)
        if refusal is not None:
            raise WorkloadRefusedError(refusal)
        if ns.layout.workload_kind == "deployment" and spec.get("paused"):
            raise WorkloadRefusedError(f"{ns.layout.workload} is paused (run `kubectl rollout resume` first)")
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if ns.layout.workload_kind == "statefulset" and strategy != "RollingUpdate":
            raise WorkloadRefusedError(
                f"{ns.layout.workload} uses updateStrategy {strategy}: it never restarts pods"
            )
        current = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
        generation = int(obj["metadata"].get("generation", 0))
        if current.get(HASH_ANNOTATION) == peers_hash:
            return RestartOutcome(restarted=False, generation=generation, message="already at this peer set")
        body = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {HASH_ANNOTATION: peers_hash, RESTARTED_AT: restarted_at}}
                }
            }
        }
        patch = (
            self.apps.patch_namespaced_deployment
            if ns.layout.workload_kind == "deployment"
            else self.apps.patch_namespaced_stateful_set
        )
        out = patch(ns.layout.workload_name, namespace, body, field_manager=FIELD_MANAGER)
        return RestartOutcome(restarted=True, generation=out.metadata.generation, message="restarted")

    def node_rpc_urls(self, namespace: str) -> list[str]:
        """CometBFT RPC base URLs of the workload's ready pods (their pod IP, the layout's RPC port)."""
        ns = self.managed_namespace(namespace)
        selector = ((self._read_workload(ns).get("spec") or {}).get("selector") or {}).get(
            "matchLabels"
        ) or {}
        if not selector:
            raise WorkloadRefusedError(f"{ns.layout.workload} has no matchLabels selector to find its pods")
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        ).items
        return sorted(
            rpc_url(pod.status.pod_ip, ns.layout.rpc_port)
            for pod in pods
            if pod.metadata.deletion_timestamp is None and pod.status and pod.status.pod_ip and _ready(pod)
        )

    def replicas(self, namespace: str) -> int:
        """The workload's desired number of pods (spec.replicas; the apiserver defaults it to 1)."""
        spec = self._read_workload(self.managed_namespace(namespace)).get("spec") or {}
        replicas = spec.get("replicas")
        return 1 if replicas is None else int(replicas)

    def rollout_verdict(self, namespace: str) -> RolloutVerdict:
        ns = self.managed_namespace(namespace)
        return verdict(ns.layout.workload_kind, self._read_workload(ns))

    def wait_rollout(
        self, namespace: str, timeout_seconds: int, on_progress: Callable[[RolloutVerdict], None]
    ) -> RolloutVerdict:
        """Watch the workload until kubectl would call it rolled out; RolloutFailedError on a dead rollout.

        Returns a not-done verdict when `timeout_seconds` passes (the caller decides whether to go on).
        """
        ns = self.managed_namespace(namespace)
        kind = ns.layout.workload_kind
        lister = (
            self.apps.list_namespaced_deployment
            if kind == "deployment"
            else self.apps.list_namespaced_stateful_set
        )
        last = RolloutVerdict(done=False, message="waiting for the first status")
        # Without a resourceVersion the stream starts with the current object (ADDED), as kubectl's list+watch.
        stream = k8s_watch.Watch().stream(
            lister,
            namespace,
            field_selector=f"metadata.name={ns.layout.workload_name}",
            timeout_seconds=timeout_seconds,
        )
        try:
            for event in stream:
                if event["type"] == "DELETED":
                    raise WorkloadRefusedError(f"{ns.layout.workload} was deleted during the rollout")
                if event["type"] not in ("ADDED", "MODIFIED"):
                    continue
                last = verdict(kind, event["raw_object"])
                on_progress(last)
                if last.failed:
                    raise RolloutFailedError(last.message)
                if last.done:
                    return last
        finally:
            stream.close()
        return last


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


def _ready(pod: k8s.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def rpc_url(pod_ip: str, port: int) -> str:
    """The apiserver's pod IP, checked to be an IP literal before it becomes part of a URL."""
    address = ipaddress.ip_address(pod_ip)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}:{port}"


def explain(exc: ApiException) -> str:
    """The apiserver's own message from a Status body, else the HTTP reason."""
    try:
        return f"HTTP {exc.status}: {json.loads(exc.body)['message']}"
    except (TypeError, ValueError, KeyError):
        return f"HTTP {exc.status}: {exc.reason}"
