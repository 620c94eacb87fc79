"""Server-side printing: `meta.k8s.io/v1` Table responses, which kubectl asks for to print `kubectl get` columns.

Columns follow the apiserver's printers (pkg/printers/internalversion) for the types we serve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devnet.kube.clock import Clock
from devnet.kube.objects import Stored
from devnet.kube.resources import (
    BINDING_TYPES,
    CLUSTERROLES,
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    ROLES,
    SERVICEACCOUNTS,
    STATEFULSETS,
    ResourceType,
)


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


Column = tuple[str, str, int, Callable[[dict[str, Any]], Any]]  # name, type, priority, cell


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [])


def _selector(obj: dict[str, Any]) -> str:
    match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(match.items())) or "<none>"


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _pod_status(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if obj["metadata"].get("deletionTimestamp"):
        return "Terminating"
    if status.get("phase") == "Pending" and not status.get("containerStatuses"):
        return "Pending"
    return str(status.get("phase") or "Unknown")


def _columns(rt: ResourceType) -> list[Column]:
    status: Callable[[dict[str, Any]], Any] = lambda o: o.get("status") or {}  # noqa: E731
    spec: Callable[[dict[str, Any]], Any] = lambda o: o.get("spec") or {}  # noqa: E731
    if rt is NAMESPACES:
        return [("Status", "string", 0, lambda o: status(o).get("phase", ""))]
    if rt is CONFIGMAPS:
        return [("Data", "string", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))]
    if rt is PODS:
        return [
            ("Ready", "string", 0, _pod_ready),
            ("Status", "string", 0, _pod_status),
            (
                "Restarts",
                "string",
                0,
                lambda o: str(
                    sum(c.get("restartCount", 0) for c in status(o).get("containerStatuses") or [])
                ),
            ),
            ("IP", "string", 1, lambda o: status(o).get("podIP") or "<none>"),
            ("Node", "string", 1, lambda o: spec(o).get("nodeName") or "<none>"),
            ("Nominated Node", "string", 1, lambda o: "<none>"),
            ("Readiness Gates", "string", 1, lambda o: "<none>"),
        ]
    if rt is DEPLOYMENTS:
        return [
            (
                "Ready",
                "string",
                0,
                lambda o: f"{status(o).get('readyReplicas', 0)}/{spec(o).get('replicas', 1)}",
            ),
            ("Up-to-date", "integer", 0, lambda o: status(o).get("updatedReplicas", 0)),
            ("Available", "integer", 0, lambda o: status(o).get("availableReplicas", 0)),
            ("Containers", "string", 1, lambda o: ",".join(c.get("name", "") for c in _containers(o))),
            ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
            ("Selector", "string", 1, _selector),
        ]
    if rt is STATEFULSETS:
        return [
            (
                "Ready",
                "string",
                0,
                lambda o: f"{status(o).get('readyReplicas', 0)}/{spec(o).get('replicas', 1)}",
            ),
            ("Containers", "string", 1, lambda o: ",".join(c.get("name", "") for c in _containers(o))),
            ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
        ]
    if rt is SERVICEACCOUNTS:
        return [("Secrets", "string", 0, lambda o: str(len(o.get("secrets") or [])))]
    if rt in (ROLES, CLUSTERROLES):
        return [("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp", ""))]
    if rt in BINDING_TYPES:
        return [
            ("Role", "string", 0, lambda o: "{kind}/{name}".format(**(o.get("roleRef") or {}))),
            ("Users", "string", 1, lambda o: _subjects(o, "User")),
            ("Groups", "string", 1, lambda o: _subjects(o, "Group")),
            ("ServiceAccounts", "string", 1, lambda o: _subjects(o, "ServiceAccount")),
        ]
    return []


def _subjects(binding: dict[str, Any], kind: str) -> str:
    names = [
        f"{s['namespace']}/{s.get('name', '')}"
        if kind == "ServiceAccount" and s.get("namespace")
        else s.get("name", "")
        for s in binding.get("subjects") or []
        if s.get("kind") == kind
    ]
    return ", ".join(names)


def table_for(rt: ResourceType, items: list[Stored], rv: int, clock: Clock) -> dict[str, Any]:
    columns = _columns(rt)
    # kubectl prints Age after the priority-0 columns; the apiserver puts it there too.
    head = [c for c in columns if c[2] == 0]
    tail = [c for c in columns if c[2] != 0]
    now = clock.now()

    def age(obj: dict[str, Any]) -> str:
        created = clock.parse(obj["metadata"].get("creationTimestamp"))
        return "<unknown>" if created is None else human_duration(now - created)

    # Roles print their creation time instead of an Age column (the apiserver's roleColumnDefinitions).
    age_column: list[Column] = [] if rt in (ROLES, CLUSTERROLES) else [("Age", "string", 0, age)]
    ordered: list[Column] = [
        ("Name", "string", 0, lambda o: o["metadata"]["name"]),
        *head,
        *age_column,
        *tail,
    ]
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": priority,
        }
        for name, kind, priority, _ in ordered
    ]
    rows = []
    for stored in items:
        obj = stored.obj
        rows.append(
            {
                "cells": [cell(obj) for _, _, _, cell in ordered],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(rv)},
        "columnDefinitions": definitions,
        "rows": rows,
    }
