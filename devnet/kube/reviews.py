"""The review APIs a client asks about itself with: what `kubectl auth can-i [--list]` and `kubectl auth whoami`
create. Nothing is stored; the answer comes back in the created object's status (201).

- authorization.k8s.io/v1 SelfSubjectAccessReview: may the requesting (maybe impersonated) user do what
  spec.resourceAttributes or spec.nonResourceAttributes describe? status.allowed and RBAC's reason, e.g.
  `RBAC: allowed by RoleBinding "peersync-consumer/consumer-a" of ClusterRole "peersync-consumer" to
  ServiceAccount "peersync-worker/peersync"`; a denial has no reason unless a binding names a missing role.
- authorization.k8s.io/v1 SelfSubjectRulesReview: every rule that applies in spec.namespace.
- authentication.k8s.io/v1 SelfSubjectReview: the user's name and groups.

Without RBAC (KubeEmulator(rbac=False)) the emulator is an AlwaysAllow cluster: every review is allowed.
"""

from __future__ import annotations

from typing import Any

from devnet.kube.auth import User
from devnet.kube.errors import ApiError, bad_request
from devnet.kube.rbac import EVERYTHING, Authorizer
from devnet.kube.requestinfo import Attributes

AUTHORIZATION = "authorization.k8s.io"
AUTHENTICATION = "authentication.k8s.io"
# (group, plural) -> kind; all in version v1, cluster-scoped, verb create only.
KINDS = {
    (AUTHENTICATION, "selfsubjectreviews"): "SelfSubjectReview",
    (AUTHORIZATION, "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
    (AUTHORIZATION, "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
}
GROUPS = (AUTHENTICATION, AUTHORIZATION)


def target(path: str) -> tuple[str, str] | None:
    """(group, plural) for a review collection path, e.g. /apis/authorization.k8s.io/v1/selfsubjectaccessreviews."""
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "apis" and parts[2] == "v1" and (parts[1], parts[3]) in KINDS:
        return parts[1], parts[3]
    return None


def api_resources(group: str) -> list[dict[str, Any]]:
    """The discovery entries (APIResourceList.resources) of a review group's v1."""
    return [
        {
            "name": plural,
            "singularName": plural.removesuffix("s"),
            "namespaced": False,
            "kind": kind,
            "verbs": ["create"],
        }
        for (g, plural), kind in sorted(KINDS.items())
        if g == group
    ]


def _invalid(kind: str, field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'{kind}.{AUTHORIZATION} "" is invalid: {field}: Invalid value: "null": {message}',
        {
            "group": AUTHORIZATION,
            "kind": kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": f"Invalid value: null: {message}", "field": field}
            ],
        },
    )


def _attributes(spec: dict[str, Any]) -> Attributes:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        raise _invalid(
            "SelfSubjectAccessReview",
            "spec.nonResourceAttributes",
            "cannot be specified in combination with resourceAttributes",
        )
    if isinstance(non_resource, dict):
        return Attributes(str(non_resource.get("verb", "")), str(non_resource.get("path", "")), False)
    if not isinstance(resource, dict):
        raise _invalid(
            "SelfSubjectAccessReview",
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
    fields = ("verb", "group", "version", "resource", "subresource", "namespace", "name")
    verb, group, version, plural, sub, namespace, name = (str(resource.get(f) or "") for f in fields)
    return Attributes(verb, "", True, group, version, plural, sub, namespace, name)


def _rules_review(user: User, namespace: str, authorizer: Authorizer | None) -> dict[str, Any]:
    rules, errors = authorizer.rules_for(user, namespace) if authorizer else (EVERYTHING, [])
    status: dict[str, Any] = {
        "resourceRules": [
            {"verbs": rule.get("verbs") or []}
            | {key: rule[key] for key in ("apiGroups", "resources", "resourceNames") if rule.get(key)}
            for rule in rules
            if rule.get("resources")
        ],
        "nonResourceRules": [
            {"verbs": rule.get("verbs") or [], "nonResourceURLs": rule["nonResourceURLs"]}
            for rule in rules
            if rule.get("nonResourceURLs")
        ],
        "incomplete": bool(errors),
    }
    if errors:
        status["evaluationError"] = ", ".join(errors)
    return status


def review(group: str, plural: str, body: Any, user: User, authorizer: Authorizer | None) -> dict[str, Any]:
    """The created review, status filled in; `authorizer` None = AlwaysAllow."""
    kind = KINDS[(group, plural)]
    if not isinstance(body, dict) or body.get("kind", kind) != kind:
        raise bad_request(f"the body of the request must be a {kind}")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    created: dict[str, Any] = {
        "kind": kind,
        "apiVersion": f"{group}/v1",
        "metadata": {"creationTimestamp": None},
    }
    if kind == "SelfSubjectReview":
        return created | {"status": {"userInfo": {"username": user.name, "groups": list(user.groups)}}}
    if kind == "SelfSubjectRulesReview":
        status = _rules_review(user, str(spec.get("namespace") or ""), authorizer)
        return created | {"spec": spec, "status": status}
    allowed, reason = authorizer.authorize(user, _attributes(spec)) if authorizer else (True, "")
    status = {"allowed": allowed} | ({"reason": reason} if reason else {})
    return created | {"spec": spec, "status": status}
