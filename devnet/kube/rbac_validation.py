"""Shape checks, defaulting and validation for ServiceAccounts and the rbac.authorization.k8s.io/v1 kinds.

Mirrors pkg/apis/rbac/validation and pkg/apis/rbac/v1/defaults.go closely enough that a manifest the real
apiserver refuses (a rule without verbs, a binding without roleRef, a changed roleRef) is refused here too;
otherwise an RBAC test could pass against the emulator with manifests a real cluster would reject.
"""

from __future__ import annotations

from typing import Any

from devnet.kube.errors import bad_request
from devnet.kube.resources import (
    BINDING_TYPES,
    CLUSTERROLEBINDINGS,
    RBAC_GROUP,
    RBAC_TYPES,
    ROLES,
    SERVICEACCOUNTS,
    ResourceType,
)

Cause = tuple[str, str, str]
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")
_RULE_LISTS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")


def _go_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}.get(
        type(value), "null"
    )


def _expect(value: Any, kind: type, field: str, go_type: str) -> None:
    if value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
        raise bad_request(
            f"json: cannot unmarshal {_go_type(value)} into Go struct field {field} of type {go_type}"
        )


def _expect_strings(value: Any, field: str) -> None:
    _expect(value, list, field, "[]string")
    for item in value or []:
        _expect(item, str, field, "string")


def _expect_objects(value: Any, field: str, go_type: str) -> list[Any]:
    _expect(value, list, field, f"[]{go_type}")
    for item in value or []:
        _expect(item, dict, field, go_type)
    return list(value or [])


def check_shape(rt: ResourceType, obj: dict[str, Any]) -> None:
    """400s for wrongly typed fields (the apiserver's JSON decode errors)."""
    if rt is SERVICEACCOUNTS:
        _expect_objects(obj.get("secrets"), "ServiceAccount.secrets", "v1.ObjectReference")
        _expect_objects(
            obj.get("imagePullSecrets"), "ServiceAccount.imagePullSecrets", "v1.LocalObjectReference"
        )
        _expect(
            obj.get("automountServiceAccountToken"),
            bool,
            "ServiceAccount.automountServiceAccountToken",
            "bool",
        )
        return
    if rt in BINDING_TYPES:
        _expect(obj.get("roleRef"), dict, f"{rt.kind}.roleRef", "v1.RoleRef")
        for key in ("apiGroup", "kind", "name"):
            _expect((obj.get("roleRef") or {}).get(key), str, f"RoleRef.roleRef.{key}", "string")
        for subject in _expect_objects(obj.get("subjects"), f"{rt.kind}.subjects", "v1.Subject"):
            for key in ("kind", "apiGroup", "name", "namespace"):
                _expect(subject.get(key), str, f"Subject.subjects.{key}", "string")
        return
    for rule in _expect_objects(obj.get("rules"), f"{rt.kind}.rules", "v1.PolicyRule"):
        for key in _RULE_LISTS:
            _expect_strings(rule.get(key), f"PolicyRule.rules.{key}")
    _expect(obj.get("aggregationRule"), dict, "ClusterRole.aggregationRule", "v1.AggregationRule")


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """SetDefaults_RoleBinding / _ClusterRoleBinding / _Subject (rbac v1)."""
    if rt not in BINDING_TYPES:
        return
    role_ref = obj.get("roleRef")
    if isinstance(role_ref, dict) and not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = RBAC_GROUP
    for subject in obj.get("subjects") or []:
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def name_causes(rt: ResourceType, name: str) -> list[Cause] | None:
    """RBAC names are path segments (`system:discovery` is valid); None = validate like any other object."""
    if rt not in RBAC_TYPES:
        return None
    return [
        ("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {msg}')
        for msg in _path_segment(name)
    ]


def _path_segment(name: str) -> list[str]:
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{ch}'" for ch in ("/", "%") if ch in name]


def _supported(values: tuple[str, ...]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def _rule_causes(rule: dict[str, Any], field: str, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(
            (f"{field}.verbs", "FieldValueRequired", "Required value: verbs must contain at least one value")
        )
    if rule.get("nonResourceURLs"):
        urls = rule["nonResourceURLs"]
        if namespaced:
            causes.append(
                (
                    f"{field}.nonResourceURLs",
                    "FieldValueInvalid",
                    f"Invalid value: {urls}: namespaced rules cannot apply to non-resource URLs",
                )
            )
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(
                (
                    f"{field}.nonResourceURLs",
                    "FieldValueInvalid",
                    f"Invalid value: {urls}: "
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return causes
    if not rule.get("apiGroups"):
        causes.append(
            (
                f"{field}.apiGroups",
                "FieldValueRequired",
                "Required value: resource rules must supply at least one api group",
            )
        )
    if not rule.get("resources"):
        causes.append(
            (
                f"{field}.resources",
                "FieldValueRequired",
                "Required value: resource rules must supply at least one resource",
            )
        )
    return causes


def _subject_causes(subject: dict[str, Any], field: str, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    name, kind, group = subject.get("name") or "", subject.get("kind") or "", subject.get("apiGroup") or ""
    if not name:
        causes.append((f"{field}.name", "FieldValueRequired", "Required value"))
    if kind == "ServiceAccount":
        if group:
            causes.append(
                (
                    f"{field}.apiGroup",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{group}": supported values: ""',
                )
            )
        if not namespaced and not subject.get("namespace"):
            causes.append((f"{field}.namespace", "FieldValueRequired", "Required value"))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            causes.append(
                (
                    f"{field}.apiGroup",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{group}": supported values: "{RBAC_GROUP}"',
                )
            )
    else:
        causes.append(
            (
                f"{field}.kind",
                "FieldValueNotSupported",
                f'Unsupported value: "{kind}": supported values: {_supported(SUBJECT_KINDS)}',
            )
        )
    return causes


def _binding_causes(rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    role_ref = obj.get("roleRef") or {}
    group, kind, name = role_ref.get("apiGroup") or "", role_ref.get("kind") or "", role_ref.get("name") or ""
    if group != RBAC_GROUP:
        causes.append(
            (
                "roleRef.apiGroup",
                "FieldValueNotSupported",
                f'Unsupported value: "{group}": supported values: "{RBAC_GROUP}"',
            )
        )
    kinds = ("ClusterRole",) if rt is CLUSTERROLEBINDINGS else ("Role", "ClusterRole")
    if kind not in kinds:
        causes.append(
            (
                "roleRef.kind",
                "FieldValueNotSupported",
                f'Unsupported value: "{kind}": supported values: {_supported(kinds)}',
            )
        )
    if not name:
        causes.append(("roleRef.name", "FieldValueRequired", "Required value"))
    else:
        causes += [
            ("roleRef.name", "FieldValueInvalid", f'Invalid value: "{name}": {msg}')
            for msg in _path_segment(name)
        ]
    namespaced = rt is not CLUSTERROLEBINDINGS
    for i, subject in enumerate(obj.get("subjects") or []):
        causes += _subject_causes(subject, f"subjects[{i}]", namespaced)
    return causes


def causes(rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    """422 causes for an RBAC object (none for a ServiceAccount beyond its name)."""
    if rt in BINDING_TYPES:
        return _binding_causes(rt, obj)
    if rt in RBAC_TYPES:
        result: list[Cause] = []
        for i, rule in enumerate(obj.get("rules") or []):
            result += _rule_causes(rule, f"rules[{i}]", rt is ROLES)
        return result
    return []


def update_causes(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """A binding's roleRef is immutable (ValidateRoleBindingUpdate): other rights take a new binding."""
    if rt in BINDING_TYPES and new.get("roleRef") != old.get("roleRef"):
        ref = new.get("roleRef") or {}
        shown = (
            f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
            f'Name:"{ref.get("name", "")}"}}'
        )
        return [("roleRef", "FieldValueInvalid", f"Invalid value: {shown}: cannot change roleRef")]
    return []
