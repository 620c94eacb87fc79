"""Label and field selectors, parsed as the apiserver parses `labelSelector` / `fieldSelector` query values.

Label operators: `=`, `==`, `!=`, `in (...)`, `notin (...)`, `key` (exists), `!key` (does not exist),
`>` and `<` (integer compare). Field selectors: `metadata.name`, `metadata.namespace` (plus `status.phase`
and `spec.nodeName` for pods) with `=`, `==`, `!=`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devnet.kube.errors import bad_request

_SET_RE = re.compile(r"^(!?)\s*([^\s!=<>(),]+)\s+(in|notin)\s*\((.*)\)$", re.S)
_BINARY_RE = re.compile(r"^([^\s!=<>(),]+)\s*(==|=|!=|>|<)\s*([^\s,()]*)$")
_EXISTS_RE = re.compile(r"^(!?)\s*([^\s!=<>(),]+)$")
_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!":
                return not present
            case ">" | "<":
                if not present:
                    return False
                try:
                    have, want = int(value or ""), int(self.values[0])
                except ValueError:
                    return False
                return have > want if self.operator == ">" else have < want
        return False  # pragma: no cover - operators are closed over by the parser


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `( )` of an in/notin set."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _check_key(key: str, whole: str) -> None:
    if not _LABEL_KEY_RE.match(key) or len(key.rsplit("/", 1)[0]) > 253:
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in selector {whole!r}")


def _check_value(value: str, whole: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE_RE.match(value):
        raise bad_request(f"unable to parse requirement: invalid label value {value!r} in selector {whole!r}")


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector()
    requirements: list[Requirement] = []
    for part in _split_top_level(text.strip()):
        if not part:
            raise bad_request(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        if m := _SET_RE.match(part):
            negated, key, op, raw = m.groups()
            if negated:
                raise bad_request(f"unable to parse requirement: '!' cannot precede {op} in {text!r}")
            values = tuple(v.strip() for v in raw.split(",")) if raw.strip() else ()
            if op == "in" and not values:
                raise bad_request(
                    f"unable to parse requirement: for 'in' operator, values set can't be empty: {text!r}"
                )
            _check_key(key, text)
            for v in values:
                _check_value(v, text)
            requirements.append(Requirement(key, op, values))
        elif m := _BINARY_RE.match(part):
            key, op, value = m.groups()
            _check_key(key, text)
            if op in (">", "<"):
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request(
                        f"unable to parse requirement: for {op!r} operator, value must be an integer"
                    )
            else:
                _check_value(value, text)
            requirements.append(Requirement(key, "=" if op == "==" else op, (value,)))
        elif m := _EXISTS_RE.match(part):
            negated, key = m.groups()
            _check_key(key, text)
            requirements.append(Requirement(key, "!" if negated else "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {part!r} in selector {text!r}")
    return LabelSelector(tuple(requirements))


def selector_from_match_labels(match_labels: Mapping[str, str] | None) -> LabelSelector:
    return LabelSelector(tuple(Requirement(k, "=", (v,)) for k, v in sorted((match_labels or {}).items())))


def selector_from_label_selector_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A workload's `spec.selector` (matchLabels + matchExpressions) as a LabelSelector."""
    selector = selector or {}
    requirements = list(selector_from_match_labels(selector.get("matchLabels")).requirements)
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        requirements.append(
            Requirement(
                expr["key"], operators.get(expr.get("operator", ""), "in"), tuple(expr.get("values") or ())
            )
        )
    return LabelSelector(tuple(requirements))


# ---------------------------------------------------------------------------------------------------------
# field selectors

FIELDS_FOR_ALL = ("metadata.name", "metadata.namespace")
EXTRA_FIELDS = {"pods": ("spec.nodeName", "status.phase"), "namespaces": ("status.phase",)}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!="
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        node: Any = obj
        for part in self.field.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        have = "" if node is None else str(node)
        return (have == self.value) == (self.operator == "=")


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value `field` must equal, if the selector pins it (lets the store use its name index)."""
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None


def parse_field_selector(text: str | None, plural: str) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector()
    allowed = FIELDS_FOR_ALL + EXTRA_FIELDS.get(plural, ())
    requirements = []
    for part in _split_top_level(text.strip()):
        m = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.groups()
        if field not in allowed:
            only = ", ".join(f'"{f}"' for f in allowed)
            raise bad_request(f'"{field}" is not a known field selector: only {only}')
        requirements.append(FieldRequirement(field, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(requirements))
