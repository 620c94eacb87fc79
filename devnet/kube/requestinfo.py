"""What a request asks to do, in authorization terms: k8s.io/apiserver/pkg/endpoints/request/requestinfo.go.

Parsed from the path alone, whether or not the emulator serves the resource, exactly as the apiserver does
before any handler runs; so a service account asking for `secrets` gets 403 (not 404) as on a real cluster.
Quirks kept on purpose because RBAC depends on them:
- `GET /api/v1/namespaces/{n}` is resource `namespaces`, name n *in the namespace n* (a RoleBinding in n
  may grant reading its own Namespace object);
- a collection GET is `list` or `watch`, and a `fieldSelector=metadata.name=x` makes its name x, so rules with
  resourceNames can allow a single-object list/watch;
- DELETE on a collection is `deletecollection`; `/watch/` paths are `watch`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_NAME_TERM = re.compile(r"\s*metadata\.name\s*==?\s*(.*?)\s*")


@dataclass(frozen=True)
class Attributes:
    verb: str
    path: str
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def watch_requested(value: str | None) -> bool:
    """`watch=true|1`: the values the emulator serves as a watch (and so authorizes as one)."""
    return (value or "").lower() in ("true", "1")


def _valid_path_segment(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


def _pinned_name(field_selector: str | None) -> str:
    """`metadata.name=x` (or `==`) among the selector's terms, as fields.RequiresExactMatch finds it."""
    for term in (field_selector or "").split(","):
        if (m := _NAME_TERM.fullmatch(term)) and m.group(1) and _valid_path_segment(m.group(1)):
            return m.group(1)
    return ""


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    parts = [p for p in path.split("/") if p]
    non_resource = Attributes(verb=method.lower(), path=path, resource_request=False)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    if parts[0] == "apis":
        if len(parts) < 4:
            return non_resource
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        group, version, rest = "", parts[1], parts[2:]
    if rest[0] == "watch":
        if len(rest) < 2:
            return non_resource  # the apiserver answers 500: there is no kind to watch
        verb, rest = "watch", rest[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if watch_requested(query.get("watch")) else "list"
        name = _pinned_name(query.get("fieldSelector"))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(verb, path, True, group, version, resource, subresource, namespace, name)
