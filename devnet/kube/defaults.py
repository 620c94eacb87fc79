"""Server-side defaulting, as the apiserver applies it on every create and update.

Defaulting must be idempotent: a client that GETs an object and PUTs it back unchanged has to produce a
byte-identical object, or the no-op detection (no resourceVersion bump, no watch event) would not hold.
"""

from __future__ import annotations

from typing import Any

from devnet.kube import rbac_validation
from devnet.kube.resources import DEPLOYMENTS, NAMESPACES, PODS, STATEFULSETS, ResourceType


def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    tag = tail.split(":", 1)[1] if ":" in tail else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


# Volume sources whose file mode the apiserver defaults to 0644 (SetDefaults_ConfigMapVolumeSource & co.).
_MODE_DEFAULTED_VOLUMES = ("configMap", "secret", "projected", "downwardAPI")


def _default_volumes(volumes: Any) -> None:
    for volume in volumes or []:
        if not isinstance(volume, dict):
            continue
        for source in _MODE_DEFAULTED_VOLUMES:
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 0o644)  # 420, as every real GET shows it
        if isinstance(volume.get("hostPath"), dict):
            volume["hostPath"].setdefault("type", "")


def default_pod_spec(spec: dict[str, Any]) -> None:
    _default_volumes(spec.get("volumes"))
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            container.setdefault("resources", {})
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            if isinstance(container.get("image"), str):
                container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])


def _default_deployment(spec: dict[str, Any]) -> None:
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_statefulset(spec: dict[str, Any]) -> None:
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _default_template(spec)


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill in what the apiserver would; `obj` has already passed the shape checks."""
    metadata = obj["metadata"]
    if rt is NAMESPACES:
        # The apiserver labels every namespace with its own name (1.21+), so selectors can pick one.
        if metadata.get("name"):
            metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        return
    rbac_validation.apply_defaults(rt, obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if rt is DEPLOYMENTS:
        _default_deployment(spec)
    elif rt is STATEFULSETS:
        _default_statefulset(spec)
    elif rt is PODS:
        default_pod_spec(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)


def normalize_status(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fields the apiserver always serializes, whatever a status writer sent (v37 requires `replicas`)."""
    if rt is STATEFULSETS:
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        status.setdefault("replicas", 0)
        status.setdefault("availableReplicas", 0)


def initial_status(rt: ResourceType) -> dict[str, Any] | None:
    """What a freshly created object's .status is (the apiserver drops any status a client sends on create)."""
    if rt is DEPLOYMENTS:
        return {}
    if rt is STATEFULSETS:
        # Both are non-omitempty in apps/v1, and the strict v37 model requires `replicas`.
        return {"replicas": 0, "availableReplicas": 0}
    if rt is NAMESPACES:
        return {"phase": "Active"}
    if rt is PODS:
        return {"phase": "Pending", "qosClass": "BestEffort"}
    return None
