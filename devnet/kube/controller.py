"""Simulated kube-controller-manager and kubelet: Deployment and StatefulSet rollouts, one deterministic step per
`tick()`.

Per tick, in this order:
1. kubelet: terminating pods whose grace period has run out disappear; every pod created before this tick
   becomes Running and Ready (unless a `never_ready` fault holds it);
2. garbage collector: pods whose owning workload is gone are deleted;
3. each workload touched since the last tick, or still rolling, is reconciled once.

Pod deletion is graceful, as in a real cluster (and why it matters: two pods of a validator running at once
sign twice): DELETE sets metadata.deletionTimestamp and deletionGracePeriodSeconds, and the pod stays Running
for its grace period (counted in ticks, see devnet.kube.pods.grace_ticks) before it goes; gracePeriodSeconds=0
removes it at once. The controllers do not count terminating pods (FilterActivePods), so:
- Deployment RollingUpdate, any maxSurge (even 0): the new pod is created as soon as the old one starts
  terminating (or before it, with a surge): the two overlap, and the rollout is reported complete
  (Progressing=NewReplicaSetAvailable, kubectl "successfully rolled out") while the old pod still terminates.
- Deployment Recreate: new pods only once every old pod is gone. Meanwhile status.replicas is 0,
  Available=False, and Progressing keeps its previous reason (no new ReplicaSet exists yet, so no
  NewReplicaSetCreated and no progress deadline); NewReplicaSetCreated is written once the old pod is gone.
- StatefulSet: an ordinal is re-created only once its old pod is gone; until then the terminating pod still
  counts in status.replicas and readyReplicas (it is Ready until it goes), not in current/updatedReplicas.
`max_running()` records, per workload, the most pods Running at once (terminating ones included).

Measured against the real kube-controller-manager v1.32.13 (tests/real/test_rollout_fidelity.py runs the same
restarts on both and compares them; tests/real/test_kube_control_plane.py records the overlap). What this model
leaves out, all harmless to kubectl's verdicts: the real Deployment status trails the pods by an informer
round-trip, so it shows transient "updatedReplicas 0" (and, with maxSurge 0, "replicas 2") writes, a StatefulSet
dips to replicas 0 between the old pod going and the new one being counted, the first write after a template
patch may carry the new Progressing reason before observedGeneration catches up, and unavailableReplicas is
counted against the ReplicaSets' desired sizes (spec + surge) rather than spec.replicas.

Deployment (RollingUpdate): a new pod-template hash gets the next `deployment.kubernetes.io/revision`; each tick
removes one old pod once a new one is Ready and adds one new pod while the total stays within replicas+1 (the
surge), so `status.replicas` is spec+1 during the roll and updatedReplicas grows by one per tick (terminating
pods are not counted in status.replicas, as the ReplicaSet controller does not count them). Progressing
goes NewReplicaSetCreated/ReplicaSetUpdated -> NewReplicaSetAvailable, or False/ProgressDeadlineExceeded when
nothing moved for `progressDeadlineSeconds`. Paused Deployments are observed but never rolled. A plain scale
(no old pods) creates every missing pod at once, like the ReplicaSet controller.

StatefulSet (RollingUpdate): updateRevision is `<name>-<hash>`; once every pod is Ready, the highest-ordinal pod
not at updateRevision (and at or above the partition) is deleted and re-created with the new template, so
readyReplicas dips by one once that pod is gone (not while it terminates); the status write in which updated == ready == replicas also sets
currentRevision := updateRevision and currentReplicas. OrderedReady creates pods one at a time in ordinal order,
each after the previous is Ready; a never-Ready pod therefore blocks everything after it. OnDelete never
replaces a pod (deleted pods come back at updateRevision, once gone).

Observed generations and status land in the tick after the write that changed the spec, so clients see
"waiting for spec update to be observed" first, as against a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devnet.kube.clock import Clock
from devnet.kube.faults import Faults
from devnet.kube.objects import Stored
from devnet.kube.pods import (
    DEFAULT_GRACE_SECONDS,
    build_pod,
    grace_ticks,
    is_ready,
    is_running,
    is_terminating,
    owner_of,
    owner_reference,
    owning_workload,
    replica_set_uid,
    running_status,
    template_hash,
)
from devnet.kube.resources import DEPLOYMENTS, PODS, STATEFULSETS, WORKLOAD_TYPES
from devnet.kube.store import Store
from devnet.kube.watch import Event

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
WorkloadKey = tuple[str, str, str]  # (plural, namespace, name)


def _scaled(value: Any, replicas: int, round_up: bool) -> int:
    """An IntOrString like maxSurge / maxUnavailable against a replica count."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            return 0
        scaled = percent * replicas
        return -(-scaled // 100) if round_up else scaled // 100
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _condition(
    previous: list[dict[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    touched: bool,
) -> dict[str, Any]:
    """A Deployment condition that keeps its timestamps unless it really changed (so idle ticks write nothing)."""
    old = next((c for c in previous if c.get("type") == kind), None)
    same = old is not None and old.get("status") == status
    unchanged = same and old is not None and old.get("reason") == reason and old.get("message") == message
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": old["lastUpdateTime"] if (unchanged and not touched and old) else now,
        "lastTransitionTime": old["lastTransitionTime"] if (same and old) else now,
        "reason": reason,
        "message": message,
    }


def _without_zeros(status: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The apiserver omits int fields tagged omitempty when they are 0."""
    return {k: v for k, v in status.items() if k in keep or v not in (0, None)}


@dataclass
class _Rollout:
    pods_new: list[Stored]
    pods_old: list[Stored]
    terminating_old: int = 0  # old-template pods still terminating (Recreate waits for them)

    @property
    def all(self) -> list[Stored]:
        return self.pods_new + self.pods_old


class Controllers:
    def __init__(self, store: Store, clock: Clock, faults: Faults) -> None:
        self._store = store
        self._clock = clock
        self._faults = faults
        self._dirty: set[WorkloadKey] = set()
        self._unready_pods: set[tuple[str, str]] = set()
        self._gc_namespaces: set[str] = set()
        self._revisions: dict[str, dict[str, int]] = {}  # deployment uid -> template hash -> revision
        self._progress: dict[str, tuple[Any, ...]] = {}  # deployment uid -> what the last tick saw
        self._sts_templates: dict[str, dict[str, dict[str, Any]]] = {}  # sts uid -> revision -> template
        self._doomed_pods: set[str] = set()  # uids of pods a never_ready fault claimed
        self._terminating: dict[str, tuple[str, str, int]] = {}  # pod uid -> (namespace, name, ticks left)
        self._running: dict[WorkloadKey, set[str]] = {}  # workload -> uids of its pods Running now
        self._max_running: dict[WorkloadKey, int] = {}
        # workload -> how many times one of its pods started Running beside another while it has 1 replica
        self._overlaps: dict[WorkloadKey, int] = {}
        store.add_listener(self._observe)
        store.set_graceful_deletion(PODS, self._start_termination)

    def max_running(self) -> dict[WorkloadKey, int]:
        """Per workload, the most of its pods ever Running at once (terminating pods included)."""
        with self._store.lock:
            return dict(self._max_running)

    def overlaps(self) -> dict[WorkloadKey, int]:
        """Per one-replica workload, the moments two of its pods ran at once (two signers of one key)."""
        with self._store.lock:
            return {key: n for key, n in self._overlaps.items() if n}

    def _count_running(self, event: Event) -> None:
        obj = event.new.obj
        workload = owning_workload(obj)
        if workload is None:
            return
        key = (workload[0], event.new.namespace, workload[1])
        running = self._running.setdefault(key, set())
        if event.type == "DELETED" or not is_running(obj):
            running.discard(obj["metadata"]["uid"])
        else:
            uid = obj["metadata"]["uid"]
            if uid not in running and running and self._replicas(key) == 1:
                self._overlaps[key] = self._overlaps.get(key, 0) + 1
            running.add(uid)
            self._max_running[key] = max(self._max_running.get(key, 0), len(running))

    def _replicas(self, key: WorkloadKey) -> int | None:
        plural, namespace, name = key
        workload = self._store.get(
            DEPLOYMENTS if plural == DEPLOYMENTS.plural else STATEFULSETS, namespace, name
        )
        return None if workload is None else int(workload.obj["spec"].get("replicas", 1))

    def _start_termination(self, pod: Stored, grace_seconds: int | None) -> Stored:
        """A pod DELETE (the store's graceful-deletion hook): mark it terminating; the kubelet removes it later."""
        if is_terminating(pod.obj):
            return pod
        if grace_seconds is None:
            grace_seconds = int(pod.obj["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))
        ticks = grace_ticks(pod.obj, grace_seconds)
        self._terminating[pod.obj["metadata"]["uid"]] = (pod.namespace, pod.name, ticks)
        return self._store.write_metadata(
            PODS,
            pod,
            {"deletionTimestamp": self._clock.rfc3339(), "deletionGracePeriodSeconds": grace_seconds},
        )

    # ------------------------------------------------------------------ bookkeeping (runs under the store lock)

    def _observe(self, event: Event) -> None:
        obj = event.new.obj
        namespace, name = event.new.namespace, event.new.name
        if event.rt in WORKLOAD_TYPES:
            self._dirty.add((event.rt.plural, namespace, name))
            if event.type == "DELETED":
                self._gc_namespaces.add(namespace)
                uid = obj["metadata"]["uid"]
                for memory in (self._revisions, self._progress, self._sts_templates):
                    memory.pop(uid, None)
            return
        if event.rt is not PODS:
            return
        self._count_running(event)
        if event.type == "DELETED":
            self._doomed_pods.discard(obj["metadata"]["uid"])
            self._terminating.pop(obj["metadata"]["uid"], None)
        if event.type == "DELETED" or is_ready(obj):
            self._unready_pods.discard((namespace, name))
        else:
            self._unready_pods.add((namespace, name))
        workload = owning_workload(obj)
        if workload is not None:
            self._dirty.add((workload[0], namespace, workload[1]))

    # ------------------------------------------------------------------ the step

    def tick(self) -> int:
        """Advance every controller one step; returns how many writes that made, plus the pods still
        terminating (work under way though no write shows it, so `settle` waits for them to go)."""
        store = self._store
        with store.lock:
            before = store.resource_version
            self._kubelet()
            self._collect_garbage()
            work, self._dirty = self._dirty, set()
            for key in sorted(work):
                plural, namespace, name = key
                rt = DEPLOYMENTS if plural == DEPLOYMENTS.plural else STATEFULSETS
                stored = store.get(rt, namespace, name)
                if stored is None:
                    continue
                busy = self._sync_deployment(stored) if rt is DEPLOYMENTS else self._sync_statefulset(stored)
                if busy:
                    self._dirty.add(key)
            return store.resource_version - before + len(self._terminating)

    def _kubelet(self) -> None:
        now = self._clock.rfc3339()
        # Grace periods run out before anything new starts: a pod's last tick is not shared with its successor.
        for uid, (namespace, name, ticks) in sorted(self._terminating.items()):
            if ticks > 1:
                self._terminating[uid] = (namespace, name, ticks - 1)
                continue
            del self._terminating[uid]
            stored = self._store.get(PODS, namespace, name)
            if stored is not None and stored.obj["metadata"]["uid"] == uid:
                self._store.delete(PODS, namespace, name, grace_period_seconds=0)
        for namespace, name in sorted(self._unready_pods):
            stored = self._store.get(PODS, namespace, name)
            if stored is None or is_terminating(stored.obj):
                self._unready_pods.discard((namespace, name))  # a terminating pod is never started
                continue
            doomed = stored.obj["metadata"]["uid"] in self._doomed_pods or self._faults.pod_never_ready(
                namespace, name
            )
            self._store.write_status(PODS, stored, running_status(stored.obj, not doomed, now))
        for namespace, name in self._faults.pod_faults():
            stored = self._store.get(PODS, namespace, name)
            if stored is not None and is_ready(stored.obj) and not is_terminating(stored.obj):
                self._store.write_status(PODS, stored, running_status(stored.obj, False, now))

    def _collect_garbage(self) -> None:
        namespaces, self._gc_namespaces = self._gc_namespaces, set()
        for namespace in sorted(namespaces):
            for pod in self._store.in_namespace(PODS, namespace):
                owner = owner_of(pod.obj)
                if (
                    owner is not None
                    and owner.get("kind") in ("ReplicaSet", "StatefulSet")
                    and not self._owner_alive(pod, owner)
                ):
                    self._store.delete(PODS, namespace, pod.name)

    def _owner_alive(self, pod: Stored, owner: dict[str, Any]) -> bool:
        if owner["kind"] == "StatefulSet":
            sts = self._store.get(STATEFULSETS, pod.namespace, owner["name"])
            return sts is not None and sts.obj["metadata"]["uid"] == owner["uid"]
        pod_hash = (pod.obj["metadata"].get("labels") or {}).get("pod-template-hash", "")
        deployment_name = owner["name"].removesuffix("-" + pod_hash)
        deployment = self._store.get(DEPLOYMENTS, pod.namespace, deployment_name)
        return (
            deployment is not None
            and replica_set_uid(deployment.obj["metadata"]["uid"], pod_hash) == owner["uid"]
        )

    # ------------------------------------------------------------------ pods

    def _create_pod(self, workload: Stored, pod: dict[str, Any]) -> None:
        created = self._store.create(PODS, workload.namespace, pod)
        if self._faults.claim_never_ready(workload.namespace, workload.name):
            self._doomed_pods.add(created.obj["metadata"]["uid"])

    def _delete_pod(self, pod: Stored) -> None:
        self._doomed_pods.discard(pod.obj["metadata"]["uid"])
        self._store.delete(PODS, pod.namespace, pod.name)

    # ------------------------------------------------------------------ Deployment

    def _deployment_pods(self, deployment: Stored, terminating: bool = False) -> list[Stored]:
        """The Deployment's pods; only active ones (as the ReplicaSet controller counts) unless `terminating`."""
        uid, prefix = deployment.obj["metadata"]["uid"], deployment.name + "-"
        owned = []
        for pod in self._store.in_namespace(PODS, deployment.namespace):
            owner = owner_of(pod.obj)
            if owner is None or owner.get("kind") != "ReplicaSet" or not owner["name"].startswith(prefix):
                continue
            pod_hash = (pod.obj["metadata"].get("labels") or {}).get("pod-template-hash", "")
            if owner["uid"] == replica_set_uid(uid, pod_hash) and terminating == is_terminating(pod.obj):
                owned.append(pod)
        return sorted(owned, key=lambda p: (p.obj["metadata"]["creationTimestamp"], p.resource_version))

    def _revision(self, uid: str, pod_hash: str) -> int:
        revisions = self._revisions.setdefault(uid, {})
        top = max(revisions.values(), default=0)
        if revisions.get(pod_hash) != top or top == 0:
            # A template seen before (a rollback) also moves to the top, as its ReplicaSet would.
            revisions[pod_hash] = top + 1
        return revisions[pod_hash]

    def _new_deployment_pod(self, deployment: Stored, pod_hash: str) -> dict[str, Any]:
        meta = deployment.obj["metadata"]
        rs_name = f"{deployment.name}-{pod_hash}"
        owner = owner_reference("apps/v1", "ReplicaSet", rs_name, replica_set_uid(meta["uid"], pod_hash))
        return build_pod(
            deployment.namespace,
            f"{rs_name}-{self._store.random_suffix()}",
            deployment.obj["spec"]["template"],
            {"pod-template-hash": pod_hash},
            owner,
        )

    def _roll_deployment(self, deployment: Stored, pod_hash: str, rollout: _Rollout) -> None:
        spec = deployment.obj["spec"]
        replicas = int(spec.get("replicas", 1))
        new, old = rollout.pods_new, rollout.pods_old
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate" and (old or rollout.terminating_old):
            # Recreate: scale the old pods down, and create new ones only once every old pod is gone.
            for pod in old:
                self._delete_pod(pod)
            return
        if not old:
            for _ in range(replicas - len(new)):
                self._create_pod(deployment, self._new_deployment_pod(deployment, pod_hash))
            surplus = sorted(new, key=lambda p: (is_ready(p.obj), p.obj["metadata"]["creationTimestamp"]))
            for pod in surplus[: max(len(new) - replicas, 0)]:
                self._delete_pod(pod)
            return
        max_surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
        surge = 0 if _scaled(max_surge, replicas, round_up=True) == 0 else 1
        ready_new = sum(1 for p in new if is_ready(p.obj))
        remaining_old = len(old)
        if ready_new + len(old) > replicas or (surge == 0 and len(new) + len(old) >= replicas):
            victim = next((p for p in old if not is_ready(p.obj)), old[0])
            self._delete_pod(victim)
            remaining_old -= 1
        if len(new) < replicas and len(new) + remaining_old < replicas + surge:
            self._create_pod(deployment, self._new_deployment_pod(deployment, pod_hash))

    def _sync_deployment(self, deployment: Stored) -> bool:
        """Reconcile one Deployment; True while it still has work to do (so the next tick looks again)."""
        obj = deployment.obj
        meta, spec = obj["metadata"], obj["spec"]
        uid = meta["uid"]
        replicas = int(spec.get("replicas", 1))
        pod_hash = template_hash(spec["template"])
        rs_name = f"{deployment.name}-{pod_hash}"
        revision = self._revision(uid, pod_hash)
        paused = bool(spec.get("paused"))

        def split() -> _Rollout:
            pods = self._deployment_pods(deployment)
            new = [
                p
                for p in pods
                if (p.obj["metadata"].get("labels") or {}).get("pod-template-hash") == pod_hash
            ]
            leaving = sum(
                1
                for p in self._deployment_pods(deployment, terminating=True)
                if (p.obj["metadata"].get("labels") or {}).get("pod-template-hash") != pod_hash
            )
            return _Rollout(new, [p for p in pods if p not in new], leaving)

        stalled = self._faults.is_stalled(DEPLOYMENTS.plural, deployment.namespace, deployment.name)
        if not paused and not stalled:
            self._roll_deployment(deployment, pod_hash, split())
        rollout = split()
        total, updated = len(rollout.all), len(rollout.pods_new)
        ready = sum(1 for p in rollout.all if is_ready(p.obj))
        available = ready
        complete = updated == replicas and total == replicas and available >= replicas

        now_seconds = self._clock.now()
        now = self._clock.rfc3339(now_seconds)
        previous = (obj.get("status") or {}).get("conditions") or []
        # Recreate makes no new ReplicaSet until every old pod is gone (terminating ones included), so until then
        # the real controller leaves Progressing as it was (measured on v1.32.13: NewReplicaSetAvailable of the
        # previous rollout, with replicas 0 and Available=False) and estimates no progress deadline; the new
        # template is "first seen" only when its ReplicaSet is created. A `stall` fault stands for a rollout stuck
        # after its new ReplicaSet exists (e.g. a pod that never turns Ready), where the deadline does apply.
        recreating = (
            (spec.get("strategy") or {}).get("type") == "Recreate"
            and not stalled
            and bool(rollout.pods_old or rollout.terminating_old)
        )
        fingerprint = (pod_hash, updated, len(rollout.pods_old), ready, replicas)
        moved = self._progress.get(uid) != fingerprint
        first_sight = uid not in self._progress or self._progress[uid][0] != pod_hash
        if not recreating:
            self._progress[uid] = fingerprint

        max_unavailable = _scaled(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%"),
            replicas,
            round_up=False,
        )
        if available >= replicas - max_unavailable:
            available_condition = _condition(
                previous,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
                touched=False,
            )
        else:
            available_condition = _condition(
                previous,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
                touched=False,
            )

        old_progressing = next((c for c in previous if c.get("type") == "Progressing"), None)
        if paused:
            progressing = _condition(
                previous,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                now,
                touched=False,
            )
        elif recreating and old_progressing is not None:
            progressing = dict(old_progressing)
        elif complete:
            progressing = _condition(
                previous,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
                touched=moved,
            )
        elif moved or old_progressing is None:
            reason, message = (
                ("NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
                if first_sight
                else ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
            )
            progressing = _condition(previous, "Progressing", "True", reason, message, now, touched=True)
        else:
            progressing = dict(old_progressing)
            last_progress = self._clock.parse(old_progressing.get("lastUpdateTime"))
            deadline = int(spec.get("progressDeadlineSeconds", 600))
            if (
                old_progressing.get("status") == "True"
                and last_progress is not None
                and now_seconds - last_progress > deadline
            ):
                progressing = _condition(
                    previous,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                    now,
                    touched=True,
                )

        status = _without_zeros(
            {
                "observedGeneration": meta.get("generation", 1),
                "replicas": total,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "unavailableReplicas": max(replicas - available, 0),
            }
        )
        status["conditions"] = [available_condition, progressing]
        self._store.write_status(DEPLOYMENTS, deployment, status, {REVISION_ANNOTATION: str(revision)})
        return not complete and not paused

    # ------------------------------------------------------------------ StatefulSet

    def _statefulset_pods(self, sts: Stored) -> dict[int, Stored]:
        uid, prefix = sts.obj["metadata"]["uid"], sts.name + "-"
        owned: dict[int, Stored] = {}
        for pod in self._store.in_namespace(PODS, sts.namespace):
            owner = owner_of(pod.obj)
            ordinal = pod.name.removeprefix(prefix)
            if owner and owner.get("uid") == uid and pod.name.startswith(prefix) and ordinal.isdigit():
                owned[int(ordinal)] = pod
        return owned

    def _new_statefulset_pod(self, sts: Stored, ordinal: int, revision: str) -> dict[str, Any]:
        meta = sts.obj["metadata"]
        templates = self._sts_templates.get(meta["uid"], {})
        template = templates.get(revision, sts.obj["spec"]["template"])
        name = f"{sts.name}-{ordinal}"
        labels = {
            "controller-revision-hash": revision,
            "statefulset.kubernetes.io/pod-name": name,
            "apps.kubernetes.io/pod-index": str(ordinal),
        }
        owner = owner_reference("apps/v1", "StatefulSet", sts.name, meta["uid"])
        pod = build_pod(sts.namespace, name, template, labels, owner, hostname=name)
        service = sts.obj["spec"].get("serviceName")
        if service:
            pod["spec"].setdefault("subdomain", service)
        return pod

    @staticmethod
    def _revision_of(pod: Stored) -> str:
        return str((pod.obj["metadata"].get("labels") or {}).get("controller-revision-hash", ""))

    def _roll_statefulset(
        self, sts: Stored, current_rev: str, update_rev: str, pods: dict[int, Stored]
    ) -> None:
        spec = sts.obj["spec"]
        replicas = int(spec.get("replicas", 1))
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0) if rolling else 0
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"

        def revision_for(ordinal: int) -> str:
            return current_rev if rolling and ordinal < partition else update_rev

        for ordinal in range(replicas):
            if ordinal in pods:
                # OrderedReady: nothing proceeds past an un-Ready pod, nor past one still terminating (the
                # ordinal is re-created only once its old pod is gone).
                if ordered and (not is_ready(pods[ordinal].obj) or is_terminating(pods[ordinal].obj)):
                    return
                continue
            self._create_pod(sts, self._new_statefulset_pod(sts, ordinal, revision_for(ordinal)))
            if ordered:
                return
        surplus = sorted((o for o in pods if o >= replicas), reverse=True)
        if ordered and any(is_terminating(pods[o].obj) for o in surplus):
            return  # scale-down goes one pod at a time, each after the last is gone
        if surplus:
            for ordinal in surplus[:1] if ordered else surplus:
                self._delete_pod(pods[ordinal])
            return
        if not rolling or any(not is_ready(p.obj) or is_terminating(p.obj) for p in pods.values()):
            return
        for ordinal in sorted(pods, reverse=True):
            if ordinal >= partition and self._revision_of(pods[ordinal]) != update_rev:
                # The replacement comes in a later tick, once this pod is gone (the creation loop above).
                self._delete_pod(pods[ordinal])
                return

    def _sync_statefulset(self, sts: Stored) -> bool:
        obj = sts.obj
        meta, spec = obj["metadata"], obj["spec"]
        replicas = int(spec.get("replicas", 1))
        update_rev = f"{sts.name}-{template_hash(spec['template'])}"
        self._sts_templates.setdefault(meta["uid"], {})[update_rev] = spec["template"]
        previous = obj.get("status") or {}
        current_rev = previous.get("currentRevision") or update_rev
        if not self._faults.is_stalled(STATEFULSETS.plural, sts.namespace, sts.name):
            self._roll_statefulset(sts, current_rev, update_rev, self._statefulset_pods(sts))
        pods = self._statefulset_pods(sts)
        total = len(pods)
        ready = sum(1 for p in pods.values() if is_ready(p.obj))
        # replicas and readyReplicas count a terminating pod until it is gone; current/updatedReplicas do not
        # (the StatefulSet controller's updateStatus skips terminating pods there; measured on v1.32.13).
        live = [p for p in pods.values() if not is_terminating(p.obj)]
        updated = sum(1 for p in live if self._revision_of(p) == update_rev)
        current = sum(1 for p in live if self._revision_of(p) == current_rev)
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and updated == total and ready == total and total == replicas:
            # completeRollingUpdate: in the same status write as the last pod becoming Ready.
            current_rev, current = update_rev, updated
        status = _without_zeros(
            {
                "observedGeneration": meta.get("generation", 1),
                "replicas": total,
                "readyReplicas": ready,
                "currentReplicas": current,
                "updatedReplicas": updated,
                "currentRevision": current_rev,
                "updateRevision": update_rev,
                "collisionCount": 0,
                "availableReplicas": ready,
            },
            keep=("replicas", "availableReplicas", "collisionCount"),
        )
        self._store.write_status(STATEFULSETS, sts, status)
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0) if rolling else 0
        settled = (
            total == replicas
            and ready == replicas
            and (
                not rolling
                or (updated >= replicas - partition and (partition > 0 or current_rev == update_rev))
            )
        )
        return not settled
