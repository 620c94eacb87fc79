"""A minimal OpenAPI v3 surface: just enough for kubectl to see that the server validates fields itself.

`kubectl apply/create -f` (1.32) validate manifests; they first ask /openapi/v3 whether the PATCH operation of
the object's group-version-kind takes the `fieldValidation` query parameter. When it does, kubectl sends
`fieldValidation=Strict` and leaves validation to the server instead of downloading full schemas. We publish
one PATCH operation per served kind with that parameter and no schemas (the emulator validates what it needs
itself and ignores the parameter). Without this, those commands fail unless run with `--validate=false`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devnet.kube.resources import ALL_TYPES, ResourceType


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _group_versions() -> list[tuple[str, str]]:
    return sorted({(rt.group, rt.version) for rt in ALL_TYPES})


def _item_path(rt: ResourceType) -> str:
    scope = "/namespaces/{namespace}" if rt.namespaced else ""
    return f"/{_gv_path(rt.group, rt.version)}{scope}/{rt.plural}/{{name}}"


def group_version_document(group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in ALL_TYPES if rt.group == group and rt.version == version]
    if not types:
        return None
    paths = {}
    for rt in types:
        paths[_item_path(rt)] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "parameters": [
                    {
                        "name": "fieldValidation",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": True},
                    },
                    {
                        "name": "fieldManager",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": True},
                    },
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                ],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": rt.group,
                    "version": rt.version,
                    "kind": rt.kind,
                },
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _hash(document: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32].upper()


def root_document() -> dict[str, Any]:
    paths = {}
    for group, version in _group_versions():
        document = group_version_document(group, version)
        assert document is not None
        gv_path = _gv_path(group, version)
        paths[gv_path] = {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={_hash(document)}"}
    return {"paths": paths}
