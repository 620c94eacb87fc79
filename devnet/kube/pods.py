"""Pods as the simulated controllers and kubelet produce them: names, owner links, labels and status."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from typing import Any

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_OWNER_NAMESPACE = uuid.UUID("5c0f5c0e-5e6d-4a7e-9d0b-6b1f2f7c1d2e")
DEVNET_NODE = "devnet-node"


def template_hash(template: dict[str, Any]) -> str:
    """A stable 10-character hash of a pod template (the role of pod-template-hash / controller-revision-hash)."""
    digest = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        digest, index = divmod(digest, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[index])
    return "".join(chars)


def replica_set_uid(deployment_uid: str, pod_template_hash: str) -> str:
    """ReplicaSets are not served; pods still point at one, whose uid is derived so ownership can be checked."""
    return str(uuid.uuid5(_OWNER_NAMESPACE, f"{deployment_uid}/{pod_template_hash}"))


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_pod(
    namespace: str,
    name: str,
    template: dict[str, Any],
    extra_labels: dict[str, str],
    owner: dict[str, Any],
    hostname: str | None = None,
) -> dict[str, Any]:
    meta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec["nodeName"] = DEVNET_NODE
    if hostname:
        spec.setdefault("hostname", hostname)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {**(meta.get("labels") or {}), **extra_labels},
        "ownerReferences": [owner],
    }
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def is_ready(pod: dict[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def is_terminating(pod: dict[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_running(pod: dict[str, Any]) -> bool:
    """Started by the kubelet and not yet gone: a terminating pod still runs until its grace period ends."""
    return (pod.get("status") or {}).get("phase") == "Running"


# Graceful deletion in ticks, not seconds, so a stepped test needs no clock: a pod that ran stays Running for
# 1 + ceil(grace / GRACE_SECONDS_PER_TICK) ticks (the default 30 s: 3 ticks), long enough to be seen beside a
# replacement the controller creates at once, as in a real cluster; a pod that never started goes at the next.
DEFAULT_GRACE_SECONDS = 30
GRACE_SECONDS_PER_TICK = 15


def grace_ticks(pod: dict[str, Any], grace_seconds: int) -> int:
    if not is_running(pod):
        return 1
    return 1 + -(-grace_seconds // GRACE_SECONDS_PER_TICK)


def owning_workload(pod: dict[str, Any]) -> tuple[str, str] | None:
    """("deployments" | "statefulsets", name) of the workload whose controller made the pod."""
    owner = owner_of(pod)
    if owner is None:
        return None
    if owner.get("kind") == "StatefulSet":
        return "statefulsets", str(owner["name"])
    if owner.get("kind") == "ReplicaSet":
        suffix = "-" + (pod["metadata"].get("labels") or {}).get("pod-template-hash", "")
        if owner["name"].endswith(suffix):
            return "deployments", str(owner["name"][: -len(suffix)])
    return None


def owner_of(pod: dict[str, Any]) -> dict[str, Any] | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


# An emulator-only knob: the pod IP to report, so a devnet can point pods at the chain emulator's node
# listeners (on loopback) and peersync's live strategy dials them there as it would dial a real pod.
POD_IP_ANNOTATION = "devnet.peersync.io/pod-ip"


def _pod_ip(uid: str) -> str:
    seed = int(uid.replace("-", "")[:8], 16)
    return f"10.244.{(seed >> 8) % 250 + 1}.{seed % 250 + 2}"


def running_status(pod: dict[str, Any], ready: bool, now: str) -> dict[str, Any]:
    """Status of a started pod; `ready=False` models a failing readiness probe."""
    previous = pod.get("status") or {}
    started = previous.get("startTime") or now
    flag = "True" if ready else "False"

    def condition(kind: str, status: str) -> dict[str, Any]:
        old = next((c for c in previous.get("conditions") or [] if c.get("type") == kind), None)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now
        result: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": since,
        }
        if status == "False":
            result["reason"] = "ContainersNotReady"
            result["message"] = (
                "containers with unready status: ["
                + " ".join(c["name"] for c in pod["spec"].get("containers") or [])
                + "]"
            )
        return result

    uid = pod["metadata"]["uid"]
    ip = (pod["metadata"].get("annotations") or {}).get(POD_IP_ANNOTATION) or _pod_ip(uid)
    return {
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", "True"),
            condition("Initialized", "True"),
            condition("Ready", flag),
            condition("ContainersReady", flag),
            condition("PodScheduled", "True"),
        ],
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": started,
        "containerStatuses": [
            {
                "name": c["name"],
                "state": {"running": {"startedAt": started}},
                "lastState": {},
                "ready": ready,
                "restartCount": 0,
                "image": c.get("image", ""),
                "imageID": "",
                "containerID": "containerd://" + hashlib.sha256(f"{uid}/{c['name']}".encode()).hexdigest(),
                "started": True,
            }
            for c in pod["spec"].get("containers") or []
        ],
        "qosClass": "BestEffort",
    }
