"""PATCH bodies: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and strategic merge patch.

Strategic merge patch is emulated as a merge patch on maps plus the directives `$patch: replace|delete`
(maps and list items), `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` (`$retainKeys` is
ignored). Lists of objects are merged by their patch merge key for the fields of the types we serve
(`containers`/`initContainers`/`env`/`volumes`/`imagePullSecrets` by name, container `ports` by containerPort,
`volumeMounts` by mountPath, `ownerReferences` by uid, `conditions` by type), which is what `kubectl apply`,
`kubectl set image` and `kubectl edit` rely on. NOT emulated: list-merge for any other list (it replaces
the stored list wholesale, as a merge patch would), composite merge keys, and `$retainKeys`. The restart patch
kubectl and peersync send touches only maps.

Any other Content-Type is answered with 415, like the apiserver.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from devnet.kube.errors import ApiError, bad_request, patch_rejected, unsupported_media_type

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def apply_patch(current: dict[str, Any], body: bytes, content_type: str | None) -> dict[str, Any]:
    kind = media_type(content_type)
    if kind not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        raise unsupported_media_type(kind)
    try:
        patch = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
    if kind == JSON_PATCH:
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise bad_request(
            f"error decoding patch: a {kind} body must be a JSON object, got {type(patch).__name__}"
        )
    if kind == MERGE_PATCH:
        return merge_patch(current, patch)
    return strategic_merge_patch(current, patch)


# ---------------------------------------------------------------------------------------------------------
# RFC 7386


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------------------------------------------------
# strategic merge patch (maps only)


# Patch merge keys (the `patchMergeKey` struct tags) of the list fields in the types the emulator serves.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
}


def _merge_list(target: Any, patch: list[Any], key: str, order: list[Any] | None) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    result = [item for item in (target if isinstance(target, list) else [])]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            result.append(copy.deepcopy(item))
            continue
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item)
    if order:
        wanted = [entry.get(key) for entry in order if isinstance(entry, dict)]
        rank = {value: i for i, value in enumerate(wanted)}
        result.sort(key=lambda item: rank.get(item.get(key) if isinstance(item, dict) else None, len(rank)))
    return result


def strategic_merge_patch(target: Any, patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if isinstance(value, list) and key in MERGE_KEYS:
            order = patch.get(f"$setElementOrder/{key}")
            result[key] = _merge_list(result.get(key), value, MERGE_KEYS[key], order)
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


# ---------------------------------------------------------------------------------------------------------
# RFC 6902


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise bad_request(f"invalid JSON pointer {path!r}")
    if path == "":
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's ==, true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _index(container: list[Any], token: str, op: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise patch_rejected(f"{op} operation does not apply: invalid array index {token!r} in {path}")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise patch_rejected(f"{op} operation does not apply: index out of range in {path}")
    return index


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, op, path, allow_end=False)]
        else:
            raise patch_rejected(f"{op} operation does not apply: doc is missing path: {path}")
    return node


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise patch_rejected(f"{op} operation does not apply: doc is missing key: {path}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, op, path, allow_end=False)]
    raise patch_rejected(f"{op} operation does not apply: doc is missing path: {path}")


def _add(doc: Any, path: str, value: Any, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, op, path, allow_end=True), value)
    else:
        raise patch_rejected(f"{op} operation does not apply: doc is missing path: {path}")
    return doc


def _remove(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise patch_rejected(f"{op} operation does not apply: cannot remove the document root")
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise patch_rejected(f"{op} operation does not apply: doc is missing key: {path}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, op, path, allow_end=False))
    raise patch_rejected(f"{op} operation does not apply: doc is missing path: {path}")


def json_patch(document: dict[str, Any], operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("error decoding patch: a JSON patch must be a list of operations")
    doc: Any = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request(f"error decoding patch: invalid operation {json.dumps(operation)}")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise bad_request(f"error decoding patch: {op} operation has no value")
        try:
            match op:
                case "add":
                    doc = _add(doc, path, copy.deepcopy(operation["value"]), op)
                case "remove":
                    _remove(doc, path, op)
                case "replace":
                    _get(doc, path, op)
                    if _pointer(path):
                        _remove(doc, path, op)
                    doc = _add(doc, path, copy.deepcopy(operation["value"]), op)
                case "move":
                    source = operation.get("from")
                    if isinstance(source, str) and path.startswith(source + "/"):
                        raise patch_rejected(f"move operation does not apply: {path} is a child of {source}")
                    value = _remove(doc, source, op)
                    doc = _add(doc, path, value, op)
                case "copy":
                    value = copy.deepcopy(_get(doc, operation.get("from"), op))
                    doc = _add(doc, path, value, op)
                case "test":
                    if not _json_equal(_get(doc, path, op), operation["value"]):
                        raise patch_rejected(f"testing value {path} failed: test failed")
                case _:
                    raise bad_request(f"error decoding patch: unexpected operation {op!r}")
        except ApiError:
            raise
        except (TypeError, KeyError, IndexError) as exc:
            raise patch_rejected(f"{op} operation does not apply: {exc}") from None
    return doc
