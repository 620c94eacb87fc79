"""Stored objects: the immutable dict + its JSON encoding, and the apiserver's field order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devnet.kube.resources import ResourceType

METADATA_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
)


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def ordered(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """kind, apiVersion, metadata, body fields, status: the apiserver's field order, for readable output."""
    metadata = obj["metadata"]
    ordered_meta = {k: metadata[k] for k in METADATA_ORDER if k in metadata}
    ordered_meta.update((k, v) for k, v in metadata.items() if k not in ordered_meta)
    result: dict[str, Any] = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": ordered_meta}
    result.update((k, v) for k, v in obj.items() if k not in ("kind", "apiVersion", "metadata", "status"))
    if "status" in obj and obj["status"] is not None:
        result["status"] = obj["status"]
    return result


@dataclass(frozen=True)
class Stored:
    """An object as stored. `obj` is shared and must never be mutated; `body` is its JSON, encoded once."""

    obj: dict[str, Any]
    body: bytes

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace", ""))

    @property
    def resource_version(self) -> int:
        return int(self.obj["metadata"]["resourceVersion"])

    def copy(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result
