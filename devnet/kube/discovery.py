"""Discovery documents (legacy, unaggregated): what kubectl reads to map `cm`, `deploy`, `sts`... to paths.

kubectl 1.32 first asks for aggregated discovery (apidiscovery.k8s.io/v2) through its Accept header and falls
back to these documents when the answer is plain `application/json`, which is what we send.
"""

from __future__ import annotations

import hashlib
from typing import Any

from devnet.kube import reviews
from devnet.kube.resources import ALL_TYPES, WORKLOAD_TYPES, ResourceType

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:03:08Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _group_version(group: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/v1", "version": "v1"}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _groups() -> list[str]:
    return sorted({rt.group for rt in ALL_TYPES if rt.group} | set(reviews.GROUPS))


def api_group(group: str) -> dict[str, Any] | None:
    if group not in _groups():
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_group_version(group)],
        "preferredVersion": _group_version(group),
    }


def api_group_list() -> dict[str, Any]:
    groups = [api_group(g) for g in _groups()]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{k: v for k, v in g.items() if k not in ("kind", "apiVersion")} for g in groups if g],
    }


def _resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": rt.verbs,
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    entry["storageVersionHash"] = hashlib.sha256(f"{rt.api_version}/{rt.kind}".encode()).hexdigest()[:11]
    return entry


def _status_subresource(rt: ResourceType) -> dict[str, Any]:
    return {
        "name": f"{rt.plural}/status",
        "singularName": "",
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": ["get", "patch", "update"],
    }


def _scale_subresource(rt: ResourceType) -> dict[str, Any]:
    return {
        "name": f"{rt.plural}/scale",
        "singularName": "",
        "namespaced": rt.namespaced,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    if group in reviews.GROUPS and version == "v1":
        resources = reviews.api_resources(group)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/v1",
            "resources": resources,
        }
    types = [rt for rt in ALL_TYPES if rt.group == group and rt.version == version]
    if not types:
        return None
    resources = []
    for rt in sorted(types, key=lambda t: t.plural):
        resources.append(_resource(rt))
        if rt in WORKLOAD_TYPES:
            resources.append(_scale_subresource(rt))
        if rt.has_status:
            resources.append(_status_subresource(rt))
    result: dict[str, Any] = {
        "kind": "APIResourceList",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
    if group:
        result["apiVersion"] = "v1"
    return result
