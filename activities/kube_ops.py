"""What peersync does to a cluster, with the official (synchronous) kubernetes client: the thin control.

`Kube` reads, asks a pure builder of `kube_build` what to send (ConfigMap content, the restart patch, rollout
verdicts, RPC URLs) and sends it; what it writes and why is decided there, testable without a cluster.

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

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import retry_on_conflict

from activities import kube_build as build
from activities.kube_build import (
    CHAIN_LABEL,
    CLUSTER_LABEL,
    CONSUMER_LABEL,
    FIELD_MANAGER,
    HASH_ANNOTATION,
    MANAGED_ANNOTATION,
    RESTARTED_AT,
    ROLLED_ANNOTATION,
    AppliedPeers,
    ConfigMapPeers,
    ManagedNamespace,
    NotManagedError,
    RestartOutcome,
    RolloutFailedError,
    WorkloadRefusedError,
    WriteOutcome,
    owned_ids,
    rpc_url,
)
from activities.rollout_status import RolloutVerdict, verdict
from activities.workload_safety import restart_refusal
from core.peer_formats import LayoutError
from core.peers import parse_peer

# The builders' names stay importable from here: callers (CLI, drift, tests) know the Kube module only.
__all__ = [
    "CHAIN_LABEL",
    "CLUSTER_LABEL",
    "CONSUMER_LABEL",
    "FIELD_MANAGER",
    "HASH_ANNOTATION",
    "MANAGED_ANNOTATION",
    "RESTARTED_AT",
    "ROLLED_ANNOTATION",
    "AppliedPeers",
    "ConfigMapPeers",
    "Kube",
    "ManagedNamespace",
    "NotManagedError",
    "RestartOutcome",
    "RolloutFailedError",
    "UnusableNamespace",
    "WorkloadRefusedError",
    "WriteOutcome",
    "api_client",
    "explain",
    "owned_ids",
    "rpc_url",
]


class UnusableNamespace(NamedTuple):
    """A namespace labelled for this cluster that peersync cannot use as it is."""

    name: str
    reason: str
    chain_id: str | None  # its chain-id label, when it has one: that chain is not "not run here"


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
    """The operations of one worker on one cluster: read, ask a builder (kube_build), send."""

    def __init__(self, api: k8s.ApiClient, cluster_id: str) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.apps = k8s.AppsV1Api(api)
        self.cluster_id = cluster_id

    # ---- namespaces ----------------------------------------------------------------------------------

    def managed_namespaces(self) -> tuple[list[ManagedNamespace], list[UnusableNamespace]]:
        """Namespaces labelled for this cluster, and those whose labels or annotations are unusable."""
        found = self.core.list_namespace(label_selector=build.cluster_selector(self.cluster_id)).items
        good, bad = [], []
        for ns in found:
            try:
                good.append(
                    build.managed_namespace(ns.metadata.name, ns.metadata.labels, ns.metadata.annotations)
                )
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
        if not build.labelled_for(ns.metadata.labels, self.cluster_id):
            raise NotManagedError(f"namespace {name} is not labelled {CLUSTER_LABEL}={self.cluster_id}")
        return build.managed_namespace(ns.metadata.name, ns.metadata.labels, ns.metadata.annotations)

    # ---- peers in the ConfigMap ----------------------------------------------------------------------

    def read_applied(self, namespace: str, desired: Iterable[str] = ()) -> AppliedPeers:
        return self.read_applied_in(self.managed_namespace(namespace), desired)

    def read_configmap(self, ns: ManagedNamespace, desired: Iterable[str] = ()) -> ConfigMapPeers:
        """The peers in the namespace's ConfigMap (one GET), split into peersync's and the operator's."""
        cm = self.core.read_namespaced_config_map(ns.layout.configmap, ns.name)
        return build.configmap_peers(ns, cm.data, cm.metadata.annotations, desired)

    def read_applied_in(self, ns: ManagedNamespace, desired: Iterable[str] = ()) -> AppliedPeers:
        """The ConfigMap's peers and the peer set the workload's pods run."""
        workload = self._read_workload(ns)
        return build.applied_peers(self.read_configmap(ns, desired), workload)

    def mark_rolled(self, namespace: str, peers_hash: str) -> bool:
        """Record on the ConfigMap that the pods run `peers_hash` (after a completed rollout); no-op if so."""
        ns = self.managed_namespace(namespace)

        def attempt() -> bool:
            cm = self.core.read_namespaced_config_map(ns.layout.configmap, namespace)
            notes = build.rolled_annotations(cm.metadata.annotations, peers_hash)
            if notes is None:
                return False
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

        def attempt() -> WriteOutcome:
            cm = self.core.read_namespaced_config_map(ns.layout.configmap, namespace)
            edit = build.peers_edit(ns.layout, cm.data, cm.metadata.annotations, parsed)
            if not edit.changed:
                return WriteOutcome(
                    written=False,
                    peers_hash=edit.peers_hash,
                    resource_version=cm.metadata.resource_version,
                    all_peers=edit.all_peers,
                )
            cm.data, cm.metadata.annotations = edit.data, edit.annotations
            # replace() carries the resourceVersion we read: a concurrent writer makes this a 409, not a loss.
            out = self.core.replace_namespaced_config_map(
                ns.layout.configmap, namespace, cm, field_manager=FIELD_MANAGER
            )
            return WriteOutcome(
                written=True,
                peers_hash=edit.peers_hash,
                resource_version=out.metadata.resource_version,
                all_peers=edit.all_peers,
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
        refusal = build.restart_refused(ns.layout, obj)
        if refusal is not None:
            raise WorkloadRefusedError(refusal)
        if build.template_hash(obj) == peers_hash:
            return RestartOutcome(
                restarted=False, generation=build.generation(obj), message="already at this peer set"
            )
        patch = (
            self.apps.patch_namespaced_deployment
            if ns.layout.workload_kind == "deployment"
            else self.apps.patch_namespaced_stateful_set
        )
        body = build.restart_patch(peers_hash, restarted_at)
        out = patch(ns.layout.workload_name, namespace, body, field_manager=FIELD_MANAGER)
        return RestartOutcome(restarted=True, generation=out.metadata.generation, message="restarted")

    def node_rpc_urls(self, namespace: str) -> list[str]:
        """CometBFT RPC base URLs of the workload's ready pods (their pod IP, the layout's RPC port)."""
        ns = self.managed_namespace(namespace)
        selector = build.pod_selector(ns.layout, self._read_workload(ns))
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return build.node_rpc_urls(
            (self.api.sanitize_for_serialization(pod) for pod in pods), ns.layout.rpc_port
        )

    def ready_pods_reader(self, namespace: str) -> tuple[int, Callable[[], list[str]]]:
        """The workload's desired pods, and a reader of its ready pods' RPC URLs that costs one pod list per
        call: the namespace's label and the workload's selector (immutable in apps/v1) are read once here."""
        ns = self.managed_namespace(namespace)
        workload = self._read_workload(ns)
        selector = build.pod_selector(ns.layout, workload)

        def ready() -> list[str]:
            pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
            return build.node_rpc_urls(
                (self.api.sanitize_for_serialization(pod) for pod in pods), ns.layout.rpc_port
            )

        return build.replicas(workload), ready

    def replicas(self, namespace: str) -> int:
        """The workload's desired number of pods (spec.replicas; the apiserver defaults it to 1)."""
        return build.replicas(self._read_workload(self.managed_namespace(namespace)))

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
        lister = (
            self.apps.list_namespaced_deployment
            if ns.layout.workload_kind == "deployment"
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
                seen = build.watched_verdict(ns.layout, event["type"], event["raw_object"])
                if seen is None:
                    continue
                last = seen
                on_progress(last)
                if last.failed:
                    raise RolloutFailedError(last.message)
                if last.done:
                    return last
        finally:
            stream.close()
        return last


def explain(exc: ApiException) -> str:
    """The apiserver's own message from a Status body, else the HTTP reason."""
    try:
        return f"HTTP {exc.status}: {json.loads(exc.body)['message']}"
    except (TypeError, ValueError, KeyError):
        return f"HTTP {exc.status}: {exc.reason}"
