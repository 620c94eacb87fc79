"""The one-replica workloads both real rollout test modules restart: the name says the update strategy."""

from __future__ import annotations

from typing import Any

NAMESPACE = "default"
GRACE_SECONDS = 3  # long enough to watch every terminating phase; the emulator counts it in ticks
SCENARIOS = ["rolling-default", "rolling-nosurge", "recreate", "sts"]
# Issue 9: a RollingUpdate (any maxSurge) runs the old and the new pod at once; Recreate and StatefulSet never.
EXPECTED_MAX_RUNNING = {"rolling-default": 2, "rolling-nosurge": 2, "recreate": 1, "sts": 1}
_STRATEGIES: dict[str, dict[str, Any] | None] = {
    "rolling-default": None,  # RollingUpdate, maxSurge 25% (-> 1), maxUnavailable 25% (-> 0)
    "rolling-nosurge": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
    "recreate": {"type": "Recreate"},
}


def workload(name: str) -> tuple[str, dict[str, Any]]:
    """(kind, manifest) of the 1-replica workload `name` in NAMESPACE, its pods labelled app=<name>."""
    template = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": GRACE_SECONDS,
            "automountServiceAccountToken": False,
            "containers": [{"name": "node", "image": "example.invalid/validator:1"}],  # kwok never pulls it
        },
    }
    spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template}
    meta = {"name": name, "namespace": NAMESPACE}
    if name == "sts":
        spec["serviceName"] = name
        return "statefulset", {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta, "spec": spec}
    if _STRATEGIES[name] is not None:
        spec["strategy"] = _STRATEGIES[name]
    return "deployment", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}
