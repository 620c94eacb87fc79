"""Request bodies in `application/vnd.kubernetes.protobuf`, for the kinds kubectl's typed clients write.

kubectl 1.32 sends `create namespace|configmap|serviceaccount|role|clusterrole|rolebinding|clusterrolebinding`
and `auth can-i|whoami` through client-go's typed clientset, which encodes the body as protobuf and has no
fallback to JSON when the server answers 415 (kubernetes/kubernetes#86253): a real apiserver decodes protobuf
for every built-in kind, so these commands need it. Responses stay JSON, which those clients accept too
(`Accept: application/vnd.kubernetes.protobuf,application/json`; they decode by the response Content-Type).

The body is "k8s\\0" followed by a runtime.Unknown {typeMeta=1 {apiVersion=1, kind=2}, raw=2,
contentEncoding=3, contentType=4}; `raw` is the object's message. Field numbers below are those of the
k8s.io/api generated.proto files (checked against kubectl 1.32's bodies). Unknown fields are skipped, and the
zero values gogo-protobuf always writes for plain fields ("" / 0 / false) are dropped as JSON's omitempty does.
Other kinds (Deployment, StatefulSet, Pod) are not decoded: their bodies get a 415.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeAlias

from devnet.kube.errors import ApiError, bad_request

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# number -> (JSON name, kind, mode). kind: "str" | "int" | "bool" | "bytes" | "time" | "map" | "bytes-map" |
# a nested Schema. mode: "" (dropped when zero), "ptr" (a pointer field: kept even when zero), "list".
Schema: TypeAlias = "dict[int, tuple[str, str | Schema, str]]"


def _strings(*names: str) -> Schema:
    return {number: (name, "str", "") for number, name in enumerate(names, 1) if name}


LABEL_SELECTOR: Schema = {
    1: ("matchLabels", "map", ""),
    2: ("matchExpressions", {**_strings("key", "operator"), 3: ("values", "str", "list")}, "list"),
}
OWNER_REFERENCE: Schema = {
    **_strings("kind", "", "name", "uid", "apiVersion"),
    6: ("controller", "bool", "ptr"),
    7: ("blockOwnerDeletion", "bool", "ptr"),
}
OBJECT_META: Schema = {
    **_strings("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion"),
    7: ("generation", "int", ""),
    8: ("creationTimestamp", "time", ""),
    9: ("deletionTimestamp", "time", ""),
    10: ("deletionGracePeriodSeconds", "int", "ptr"),
    11: ("labels", "map", ""),
    12: ("annotations", "map", ""),
    13: ("ownerReferences", OWNER_REFERENCE, "list"),
    14: ("finalizers", "str", "list"),
}
OBJECT_REFERENCE = _strings("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
POLICY_RULE: Schema = {
    number: (name, "str", "list")
    for number, name in enumerate(("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"), 1)
}
META: Schema = {1: ("metadata", OBJECT_META, "")}
BINDING: Schema = {
    **META,
    2: ("subjects", _strings("kind", "apiGroup", "name", "namespace"), "list"),
    3: ("roleRef", _strings("apiGroup", "kind", "name"), ""),
}
ROLE: Schema = {**META, 2: ("rules", POLICY_RULE, "list")}
RBAC = "rbac.authorization.k8s.io/v1"

SCHEMAS: dict[tuple[str, str], Schema] = {
    ("v1", "Namespace"): {
        **META,
        2: ("spec", {1: ("finalizers", "str", "list")}, ""),
        3: ("status", _strings("phase"), ""),
    },
    ("v1", "ConfigMap"): {
        **META,
        2: ("data", "map", ""),
        3: ("binaryData", "bytes-map", ""),
        4: ("immutable", "bool", "ptr"),
    },
    ("v1", "ServiceAccount"): {
        **META,
        2: ("secrets", OBJECT_REFERENCE, "list"),
        3: ("imagePullSecrets", _strings("name"), "list"),
        4: ("automountServiceAccountToken", "bool", "ptr"),
    },
    (RBAC, "Role"): ROLE,
    (RBAC, "ClusterRole"): {
        **ROLE,
        3: ("aggregationRule", {1: ("clusterRoleSelectors", LABEL_SELECTOR, "list")}, "ptr"),
    },
    (RBAC, "RoleBinding"): BINDING,
    (RBAC, "ClusterRoleBinding"): BINDING,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
        **META,
        2: (
            "spec",
            {
                1: (
                    "resourceAttributes",
                    _strings(*"namespace verb group version resource subresource name".split()),
                    "ptr",
                ),
                2: ("nonResourceAttributes", _strings("path", "verb"), "ptr"),
            },
            "",
        ),
    },
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): {**META, 2: ("spec", _strings("namespace"), "")},
    ("authentication.k8s.io/v1", "SelfSubjectReview"): META,
}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise bad_request("the body of the request could not be decoded: truncated protobuf varint")
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: an int for a varint, bytes for a length-delimited field."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        wire_type = key & 7
        if wire_type == 0:
            value, i = _varint(data, i)
            yield key >> 3, value
        elif wire_type == 2:
            length, i = _varint(data, i)
            if i + length > len(data):
                raise bad_request("the body of the request could not be decoded: truncated protobuf field")
            yield key >> 3, data[i : i + length]
            i += length
        elif wire_type in (1, 5):  # fixed64 / fixed32: no such field in the kinds decoded here
            i += 8 if wire_type == 1 else 4
        else:
            raise bad_request(f"the body of the request could not be decoded: protobuf wire type {wire_type}")


def _decode(value: int | bytes, kind: str | Schema) -> Any:
    if isinstance(value, int) != (kind in ("int", "bool")):
        raise bad_request("the body of the request could not be decoded: unexpected protobuf wire type")
    if isinstance(value, int):
        return bool(value) if kind == "bool" else value - (1 << 64) if value >= 1 << 63 else value
    if isinstance(kind, dict):
        return message(value, kind)
    if kind == "str":
        return value.decode()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "time":
        seconds = int(message(value, {1: ("s", "int", "")}).get("s", 0))
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else None
    entry = message(
        value, {1: ("k", "str", "ptr"), 2: ("v", "bytes" if kind == "bytes-map" else "str", "ptr")}
    )
    return entry.get("k", ""), entry.get("v", "")


def message(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        name, kind, mode = schema[number]
        value = _decode(raw, kind)
        if kind in ("map", "bytes-map"):
            out.setdefault(name, {})[value[0]] = value[1]
        elif mode == "list":
            out.setdefault(name, []).append(value)
        elif mode == "ptr" or value not in ("", 0, False, None):
            out[name] = value
    return out


def decode(raw: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; ApiError 415 for a kind not decoded here."""
    if not raw.startswith(MAGIC):
        raise bad_request(
            "the body of the request could not be decoded: protobuf body without the k8s prefix"
        )
    fields = dict(_fields(raw[len(MAGIC) :]))
    type_meta, body, encoding = fields.get(1, b""), fields.get(2, b""), fields.get(3, b"")
    if not (isinstance(type_meta, bytes) and isinstance(body, bytes) and isinstance(encoding, bytes)):
        raise bad_request("the body of the request could not be decoded: malformed protobuf envelope")
    meta = message(type_meta, _strings("apiVersion", "kind"))
    api_version, kind = meta.get("apiVersion", ""), meta.get("kind", "")
    schema = SCHEMAS.get((api_version, kind))
    if schema is None or encoding:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the emulator decodes {PROTOBUF} only for {', '.join(k for _, k in SCHEMAS)} (not {kind!r}); "
            "send application/json",
        )
    return {"apiVersion": api_version, "kind": kind, **message(body, schema)}
