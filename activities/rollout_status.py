"""kubectl's `rollout status` verdicts (pkg/polymorphichelpers/rollout_status.go), as pure functions.

For StatefulSets we use the stricter completion check of reference/kubernetes.md §2: with partition 0
kubectl stops at "partitioned roll out complete" before the controller has finished, so we also require
currentRevision == updateRevision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class RolloutVerdict(BaseModel):
    done: bool
    failed: bool = False
    message: str


def _get(obj: dict[str, Any], *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def deployment_verdict(d: dict[str, Any]) -> RolloutVerdict:
    name = _get(d, "metadata", "name")
    generation = _get(d, "metadata", "generation", default=0)
    status = d.get("status") or {}
    if generation > status.get("observedGeneration", 0):
        return RolloutVerdict(done=False, message="waiting for deployment spec update to be observed")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == PROGRESS_DEADLINE_EXCEEDED:
            if _timed_out_before_restart(d, cond):
                continue
            return RolloutVerdict(
                done=False, failed=True, message=f'deployment "{name}" exceeded its progress deadline'
            )
    replicas = _get(d, "spec", "replicas")
    updated = status.get("updatedReplicas", 0)
    if replicas is not None and updated < replicas:
        return RolloutVerdict(
            done=False, message=f"{updated} out of {replicas} new replicas have been updated"
        )
    if status.get("replicas", 0) > updated:
        pending = status.get("replicas", 0) - updated
        return RolloutVerdict(done=False, message=f"{pending} old replicas are pending termination")
    available = status.get("availableReplicas", 0)
    if available < updated:
        return RolloutVerdict(done=False, message=f"{available} of {updated} updated replicas are available")
    return RolloutVerdict(done=True, message=f'deployment "{name}" successfully rolled out')


def _timed_out_before_restart(d: dict[str, Any], cond: dict[str, Any]) -> bool:
    """A timeout recorded before the pod template's restart belongs to the previous rollout: the controller
    keeps a ProgressDeadlineExceeded condition (DeploymentTimedOut) until it sees the new rollout progress,
    and under Recreate that is only once the old pods are gone. Read as this rollout's failure, it would fail
    a restart of a Deployment whose last rollout timed out at its first look. A timeout of this rollout is
    recorded after the restart (a new lastUpdateTime) and still fails it."""
    restarted = _get(d, "spec", "template", "metadata", "annotations", RESTARTED_AT)
    updated = cond.get("lastUpdateTime")
    if not isinstance(restarted, str) or not isinstance(updated, str):
        return False
    try:
        return datetime.fromisoformat(updated) < datetime.fromisoformat(restarted)
    except ValueError:
        return False


def statefulset_verdict(s: dict[str, Any]) -> RolloutVerdict:
    name = _get(s, "metadata", "name")
    strategy = _get(s, "spec", "updateStrategy", "type", default="RollingUpdate")
    if strategy != "RollingUpdate":
        return RolloutVerdict(
            done=False, failed=True, message=f"statefulset {name} uses {strategy}: no rollout"
        )
    generation = _get(s, "metadata", "generation", default=0)
    status = s.get("status") or {}
    observed = status.get("observedGeneration", 0)
    if observed == 0 or generation > observed:
        return RolloutVerdict(done=False, message="waiting for statefulset spec update to be observed")
    replicas = _get(s, "spec", "replicas", default=1)
    ready = status.get("readyReplicas", 0)
    if ready < replicas:
        return RolloutVerdict(done=False, message=f"waiting for {replicas - ready} pods to be ready")
    partition = _get(s, "spec", "updateStrategy", "rollingUpdate", "partition", default=0) or 0
    updated = status.get("updatedReplicas", 0)
    if updated < replicas - partition:
        return RolloutVerdict(done=False, message=f"{updated} of {replicas - partition} pods updated")
    if partition == 0 and status.get("currentRevision") != status.get("updateRevision"):
        return RolloutVerdict(done=False, message="waiting for the update revision to become current")
    return RolloutVerdict(done=True, message=f"statefulset {name} rolling update complete")


def verdict(kind: str, obj: dict[str, Any]) -> RolloutVerdict:
    return deployment_verdict(obj) if kind == "deployment" else statefulset_verdict(obj)
