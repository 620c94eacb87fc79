"""Request body checks: shape errors (400, the apiserver's decode errors) and field validation (422 Invalid).

Beyond fidelity, these guard the emulator's own responses: an object stored without e.g. spec.selector
would make every later read fail in the strict v37 client models, far away from the bad write.
"""

from __future__ import annotations

import json
import re
from typing import Any

from devnet.kube import rbac_validation
from devnet.kube.errors import ApiError, bad_request, invalid
from devnet.kube.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    RBAC_TYPES,
    SERVICEACCOUNTS,
    STATEFULSETS,
    ResourceType,
)
from devnet.kube.selectors import (
    _LABEL_KEY_RE,
    _LABEL_VALUE_RE,
    selector_from_label_selector_object,
)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_HELP = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)

# The rest of the apiserver's messages for these checks (apimachinery's validation.*ErrMsg), word for word.
QUALIFIED_NAME_HELP = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_HELP = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)

Cause = tuple[str, str, str]


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # strconv.Quote, for the printable strings seen here


def go_string_map(value: dict[str, str] | None) -> str:
    """A map[string]string as Go's %#v prints it in an Invalid value (sorted keys; nil when absent)."""
    if value is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{_go_quote(k)}:{_go_quote(v)}" for k, v in sorted(value.items()))
    return f"map[string]string{{{items}}}"


def go_label_selector(selector: dict[str, Any] | None) -> str:
    """A metav1.LabelSelector as Go's %#v prints it (the apiserver's "field is immutable" message)."""
    selector = selector or {}
    expressions = selector.get("matchExpressions")
    if expressions is None:
        shown = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in expressions:
            values = e.get("values")
            vals = "[]string(nil)" if values is None else f"[]string{{{', '.join(map(_go_quote, values))}}}"
            parts.append(
                f"v1.LabelSelectorRequirement{{Key:{_go_quote(e.get('key', ''))}, "
                f"Operator:{_go_quote(e.get('operator', ''))}, Values:{vals}}}"
            )
        shown = f"[]v1.LabelSelectorRequirement{{{', '.join(parts)}}}"
    return f"v1.LabelSelector{{MatchLabels:{go_string_map(selector.get('matchLabels'))}, MatchExpressions:{shown}}}"


def _go_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}.get(
        type(value), "null"
    )


def _expect(value: Any, kind: type | tuple[type, ...], field: str, go_type: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) and kind is int:
        ok = False
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise bad_request(
            f"json: cannot unmarshal {_go_type(value)} into Go struct field {field} of type {go_type}"
        )


def _string_map(value: Any, field: str) -> None:
    _expect(value, dict, field, "map[string]string")
    for item in (value or {}).values():
        _expect(item, str, field, "string")


def check_shape(rt: ResourceType, obj: Any) -> None:
    """400s: the body is not the object the URL names, or a field has the wrong JSON type."""
    if not isinstance(obj, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {rt.kind})")
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if api_version not in (None, "", rt.api_version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )
    if kind not in (None, "", rt.kind):
        raise bad_request(f"the object provided is unrecognized (must be of type {rt.kind}): kind {kind!r}")
    metadata = obj.get("metadata")
    _expect(metadata, dict, "ObjectMeta.metadata", "v1.ObjectMeta")
    metadata = metadata or {}
    for key in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        _expect(metadata.get(key), str, f"ObjectMeta.metadata.{key}", "string")
    _string_map(metadata.get("labels"), "ObjectMeta.metadata.labels")
    _string_map(metadata.get("annotations"), "ObjectMeta.metadata.annotations")
    _expect(obj.get("status"), dict, f"{rt.kind}.status", f"v1.{rt.kind}Status")
    if rt is CONFIGMAPS:
        _string_map(obj.get("data"), "ConfigMap.data")
        _string_map(obj.get("binaryData"), "ConfigMap.binaryData")
        return
    if rt is SERVICEACCOUNTS or rt in RBAC_TYPES:  # no spec: their fields sit at the top level
        rbac_validation.check_shape(rt, obj)
        return
    spec = obj.get("spec")
    _expect(spec, dict, f"{rt.kind}.spec", f"v1.{rt.kind}Spec")
    if rt in (DEPLOYMENTS, STATEFULSETS) and isinstance(spec, dict):
        _expect(spec.get("replicas"), int, f"{rt.kind}Spec.spec.replicas", "int32")
        _expect(spec.get("paused"), bool, "DeploymentSpec.spec.paused", "bool")
        _expect(
            spec.get("progressDeadlineSeconds"), int, "DeploymentSpec.spec.progressDeadlineSeconds", "int32"
        )
        _expect(spec.get("selector"), dict, f"{rt.kind}Spec.spec.selector", "v1.LabelSelector")
        template = spec.get("template")
        _expect(template, dict, f"{rt.kind}Spec.spec.template", "v1.PodTemplateSpec")
        if isinstance(template, dict):
            _expect(template.get("metadata"), dict, "PodTemplateSpec.spec.template.metadata", "v1.ObjectMeta")
            template_meta = template.get("metadata") or {}
            _string_map(template_meta.get("labels"), "ObjectMeta.spec.template.metadata.labels")
            _string_map(template_meta.get("annotations"), "ObjectMeta.spec.template.metadata.annotations")
            _expect(template.get("spec"), dict, "PodTemplateSpec.spec.template.spec", "v1.PodSpec")
            _check_containers_shape(
                (template.get("spec") or {}).get("containers"), "spec.template.spec.containers"
            )
    if rt is PODS and isinstance(spec, dict):
        _check_containers_shape(spec.get("containers"), "spec.containers")


def _check_containers_shape(containers: Any, field: str) -> None:
    _expect(containers, list, f"PodSpec.{field}", "[]v1.Container")
    for container in containers or []:
        _expect(container, dict, f"PodSpec.{field}", "v1.Container")


def _meta_causes(rt: ResourceType, metadata: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    name = metadata.get("name")
    if not name:
        causes.append(
            ("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
        )
    elif (rbac_causes := rbac_validation.name_causes(rt, name)) is not None:
        causes += rbac_causes
    elif rt is NAMESPACES:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {LABEL_HELP}'))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {SUBDOMAIN_HELP}'))
    for key, value in (metadata.get("labels") or {}).items():
        if not _LABEL_KEY_RE.match(key):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": {QUALIFIED_NAME_HELP}',
                )
            )
        if len(value) > 63 or not _LABEL_VALUE_RE.match(value):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": {LABEL_VALUE_HELP}',
                )
            )
    for key in metadata.get("annotations") or {}:
        if not _LABEL_KEY_RE.match(key):
            causes.append(
                (
                    "metadata.annotations",
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": {QUALIFIED_NAME_HELP}',
                )
            )
    return causes


def _container_causes(containers: Any, field: str) -> list[Cause]:
    if not containers:
        return [(field, "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    for i, container in enumerate(containers):
        name = container.get("name")
        if not name:
            causes.append((f"{field}[{i}].name", "FieldValueRequired", "Required value"))
        elif not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
            causes.append(
                (f"{field}[{i}].name", "FieldValueInvalid", f'Invalid value: "{name}": {LABEL_HELP}')
            )
        if not container.get("image"):
            causes.append((f"{field}[{i}].image", "FieldValueRequired", "Required value"))
    return causes


def _workload_causes(spec: dict[str, Any] | None) -> list[Cause]:
    if spec is None:
        return [
            ("spec.selector", "FieldValueRequired", "Required value"),
            ("spec.template.spec.containers", "FieldValueRequired", "Required value"),
        ]
    causes: list[Cause] = []
    if (spec.get("replicas") or 0) < 0:
        causes.append(
            (
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {spec['replicas']}: must be greater than or equal to 0",
            )
        )
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels_or_nil = (template.get("metadata") or {}).get("labels")
    labels = labels_or_nil or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
    elif not selector_from_label_selector_object(selector).matches(labels):
        causes.append(
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: {go_string_map(labels_or_nil)}: `selector` does not match template `labels`",
            )
        )
    causes += _container_causes(
        (template.get("spec") or {}).get("containers"), "spec.template.spec.containers"
    )
    return causes


def check_valid(rt: ResourceType, obj: dict[str, Any]) -> None:
    """422 Invalid, with one cause per broken field."""
    causes = _meta_causes(rt, obj["metadata"])
    if rt is CONFIGMAPS:
        for key in list(obj.get("data") or {}) + list(obj.get("binaryData") or {}):
            if not _CONFIG_KEY.match(key) or len(key) > 253:
                causes.append(
                    (
                        f"data[{key}]",
                        "FieldValueInvalid",
                        f'Invalid value: "{key}": {CONFIG_KEY_HELP}',
                    )
                )
    elif rt in (DEPLOYMENTS, STATEFULSETS):
        causes += _workload_causes(obj.get("spec"))
    elif rt is PODS:
        causes += _container_causes((obj.get("spec") or {}).get("containers"), "spec.containers")
    else:
        causes += rbac_validation.causes(rt, obj)
    if causes:
        raise invalid(rt, obj["metadata"].get("name") or "", causes)


_STATEFULSET_MUTABLE_SPEC = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}


def check_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    """422 for changes the apiserver forbids on update (immutable fields)."""
    name = old["metadata"]["name"]
    causes: list[Cause] = []
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if rt in (DEPLOYMENTS, STATEFULSETS) and new_spec.get("selector") != old_spec.get("selector"):
        causes.append(
            (
                "spec.selector",
                "FieldValueInvalid",
                f"Invalid value: {go_label_selector(new_spec.get('selector'))}: field is immutable",
            )
        )
    if rt is STATEFULSETS:
        changed = {
            k
            for k in set(new_spec) | set(old_spec)
            if k not in _STATEFULSET_MUTABLE_SPEC and k != "selector" and new_spec.get(k) != old_spec.get(k)
        }
        if changed:
            causes.append(
                (
                    "spec",
                    "FieldValueForbidden",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden",
                )
            )
    if (
        rt is CONFIGMAPS
        and old.get("immutable")
        and (
            new.get("data") != old.get("data")
            or new.get("binaryData") != old.get("binaryData")
            or not new.get("immutable")
        )
    ):
        causes.append(
            ("data", "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set")
        )
    causes += rbac_validation.update_causes(rt, new, old)
    if causes:
        raise invalid(rt, name, causes)


def precondition_uid(rt: ResourceType, new_uid: str | None, old_uid: str) -> None:
    if new_uid and new_uid != old_uid:
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rt.qualified} "": Precondition failed: UID in precondition: '
            f"{new_uid}, UID in object meta: {old_uid}",
        )
