"""The RBAC authorizer: plugin/pkg/auth/authorizer/rbac (rbac.go, rule.go) over the store's live objects.

Every decision reads the Roles, ClusterRoles and bindings as stored at that moment, so a test that edits a
role sees the effect on the very next request. A ClusterRoleBinding grants its ClusterRole everywhere; a
RoleBinding grants its Role or ClusterRole only for requests whose namespace is the binding's own.

Not emulated: the bootstrap roles as objects (only the effect of system:discovery / system:public-info-viewer,
built in below), ClusterRole aggregation, and the escalate/bind checks on writing RBAC objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from devnet.kube.auth import User
from devnet.kube.errors import ApiError
from devnet.kube.requestinfo import Attributes
from devnet.kube.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES
from devnet.kube.store import Store

Rule = dict[str, Any]

# What the bootstrap ClusterRoles system:discovery and system:public-info-viewer let every authenticated user
# read, so clients can discover the API before they touch a resource.
DISCOVERY_RULE: Rule = {
    "verbs": ["get"],
    "nonResourceURLs": [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ],
}


def _matches(values: list[str] | None, wanted: str) -> bool:
    return any(v == "*" or v == wanted for v in values or [])


def _resource_matches(rule: Rule, attrs: Attributes) -> bool:
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for resource in rule.get("resources") or []:
        if resource in ("*", combined):
            return True
        if attrs.subresource and resource == f"*/{attrs.subresource}":  # any resource's e.g. status
            return True
    return False


def _url_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url in ("*", path) or (url.endswith("*") and path.startswith(url.rstrip("*"))):
            return True
    return False


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    if not _matches(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("apiGroups"), attrs.api_group)
        and _resource_matches(rule, attrs)
        and (not names or attrs.name in names)  # a request without a name (list, create) never matches names
    )


def _applies_to(user: User, subjects: list[dict[str, Any]] | None, namespace: str) -> bool:
    for subject in subjects or []:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and user.name == name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount":
            # A RoleBinding's subject may leave out its namespace: it then means the binding's own.
            sa_namespace = subject.get("namespace") or namespace
            if sa_namespace and user.name == f"system:serviceaccount:{sa_namespace}:{name}":
                return True
    return False


class Authorizer:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _role_rules(self, role_ref: dict[str, Any], namespace: str) -> list[Rule] | str:
        """The referenced role's rules, or the error RBAC reports for a role that does not exist."""
        name = role_ref.get("name", "")
        if role_ref.get("kind") == "Role":
            stored = self.store.get(ROLES, namespace, name)
            missing = f'role.rbac.authorization.k8s.io "{name}" not found'
        else:
            stored = self.store.get(CLUSTERROLES, "", name)
            missing = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
        return missing if stored is None else list(stored.obj.get("rules") or [])

    def _rules_for(self, user: User, namespace: str, errors: list[str]) -> Iterator[Rule]:
        """VisitRulesFor: cluster-wide grants first, then the namespace's own bindings."""
        bindings, _ = self.store.list(CLUSTERROLEBINDINGS, "")
        scoped = [(b, "") for b in bindings]
        if namespace:
            bindings, _ = self.store.list(ROLEBINDINGS, namespace)
            scoped += [(b, namespace) for b in bindings]
        for binding, binding_namespace in scoped:
            if not _applies_to(user, binding.obj.get("subjects"), binding_namespace):
                continue
            rules = self._role_rules(binding.obj.get("roleRef") or {}, binding_namespace)
            if isinstance(rules, str):
                errors.append(rules)
                continue
            yield from rules

    def authorize(self, user: User, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason); the reason names broken role references, as the apiserver's denials do."""
        if user.superuser:
            return True, ""
        if "system:authenticated" in user.groups and rule_allows(DISCOVERY_RULE, attrs):
            return True, ""
        errors: list[str] = []
        if any(rule_allows(rule, attrs) for rule in self._rules_for(user, attrs.namespace, errors)):
            return True, ""
        unique = list(dict.fromkeys(errors))
        if not unique:
            return False, ""
        return False, "RBAC: " + (unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]")


def forbidden(user: User, attrs: Attributes, reason: str = "") -> ApiError:
    """The apiserver's 403 (responsewriters.Forbidden + apierrors.NewForbidden), message and details alike."""
    if not attrs.resource_request:
        message = f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        message = (
            f'User "{user.name}" cannot {attrs.verb} resource "{resource}" '
            f'in API group "{attrs.api_group}" {where}'
        )
    if reason:
        message = f"{message}: {reason}"
    details: dict[str, Any] = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.api_group:
        details["group"] = attrs.api_group
    if attrs.resource:
        details["kind"] = attrs.resource
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if not qualified:
        full = f"forbidden: {message}"
    elif attrs.name:
        full = f'{qualified} "{attrs.name}" is forbidden: {message}'
    else:
        full = f"{qualified} is forbidden: {message}"
    return ApiError(403, "Forbidden", full, details)
