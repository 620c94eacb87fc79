"""The `/scale` subresource of Deployments and StatefulSets (autoscaling/v1 Scale), which `kubectl scale` uses.

A Scale write changes only spec.replicas of the workload, with the usual resourceVersion precondition and
generation bump.
"""

from __future__ import annotations

from typing import Any

from devnet.kube import errors
from devnet.kube.objects import Stored
from devnet.kube.resources import ResourceType
from devnet.kube.store import Store


def _selector_string(selector: dict[str, Any] | None) -> str:
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        operator, key = expr.get("operator"), expr.get("key")
        values = ",".join(expr.get("values") or [])
        parts.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": f"{key}",
                "DoesNotExist": f"!{key}",
            }.get(operator, "")
        )
    return ",".join(p for p in parts if p)


def scale_of(stored: Stored) -> dict[str, Any]:
    obj = stored.obj
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": _selector_string(obj["spec"].get("selector")),
        },
    }


def write_scale(store: Store, rt: ResourceType, namespace: str, name: str, scale: Any) -> dict[str, Any]:
    if not isinstance(scale, dict):
        raise errors.bad_request("the object provided is unrecognized (must be of type Scale)")
    with store.lock:
        current = store.require(rt, namespace, name)
        expected = (scale.get("metadata") or {}).get("resourceVersion")
        if expected and expected != current.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                rt,
                name,
                [
                    (
                        "spec.replicas",
                        "FieldValueInvalid",
                        f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                    )
                ],
            )

        def set_replicas(obj: dict[str, Any]) -> dict[str, Any]:
            obj["spec"]["replicas"] = replicas
            obj["metadata"].pop("resourceVersion", None)
            return obj

        return scale_of(store.patch(rt, namespace, name, set_replicas))
