"""The RBAC authorizer: plugin/pkg/auth/authorizer/rbac (rbac.go, rule.go) over the store's live objects.

Every decision reads the Roles, ClusterRoles and bindings as stored at that moment, so a test that edits a
role sees the effect on the very next request. A ClusterRoleBinding grants its ClusterRole everywhere; a
RoleBinding grants its Role or ClusterRole only for requests whose namespace is the binding's own.

Not emulated: the bootstrap roles as objects (only the effect of system:discovery / system:public-info-viewer
and system:basic-user, built in below), ClusterRole aggregation, and the escalate/bind checks on writing RBAC
objects.
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
# system:basic-user: everyone may ask what they themselves may do (kubectl auth can-i / whoami).
BASIC_USER_RULES: list[Rule] = [
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
]
# The bootstrap ClusterRoleBindings of those roles to Group system:authenticated, as (name, rules).
BOOTSTRAP: tuple[tuple[str, list[Rule]], ...] = (
    ("system:basic-user", BASIC_USER_RULES),
    ("system:discovery", [DISCOVERY_RULE]),
)
# What the privileged-group authorizer answers for system:masters in a SelfSubjectRulesReview.
EVERYTHING: list[Rule] = [
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
]


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


def _subject_for(user: User, subjects: list[dict[str, Any]] | None, namespace: str) -> dict[str, Any] | None:
    """The binding's subject that is `user` (or one of its groups), if any."""
    for subject in subjects or []:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and user.name == name:
            return subject
        if kind == "Group" and name in user.groups:
            return subject
        if kind == "ServiceAccount":
            # A RoleBinding's subject may leave out its namespace: it then means the binding's own.
            sa_namespace = subject.get("namespace") or namespace
            if sa_namespace and user.name == f"system:serviceaccount:{sa_namespace}:{name}":
                return subject
    return None


def _describe(binding: dict[str, Any], namespace: str, subject: dict[str, Any]) -> str:
    """rule.go's roleBindingDescriber / clusterRoleBindingDescriber, for the "allowed by" reason."""
    name = binding.get("metadata", {}).get("name", "")
    role_ref = binding.get("roleRef") or {}
    if subject.get("kind") == "ServiceAccount":
        who = f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or namespace}"'
    else:
        who = f'{subject.get("kind")} "{subject.get("name")}"'
    kind = f'RoleBinding "{name}/{namespace}"' if namespace else f'ClusterRoleBinding "{name}"'
    return f'{kind} of {role_ref.get("kind")} "{role_ref.get("name")}" to {who}'


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

    def _visit(self, user: User, namespace: str, errors: list[str]) -> Iterator[tuple[str, Rule]]:
        """VisitRulesFor: (where a rule comes from, the rule); cluster-wide grants first (the built-in
        bootstrap bindings, then the stored ones), then the namespace's own bindings."""
        if "system:authenticated" in user.groups:
            for name, rules in BOOTSTRAP:
                source = (
                    f'ClusterRoleBinding "{name}" of ClusterRole "{name}" to Group "system:authenticated"'
                )
                yield from ((source, rule) for rule in rules)
        bindings, _ = self.store.list(CLUSTERROLEBINDINGS, "")
        scoped = [(b, "") for b in bindings]
        if namespace:
            bindings, _ = self.store.list(ROLEBINDINGS, namespace)
            scoped += [(b, namespace) for b in bindings]
        for binding, binding_namespace in scoped:
            subject = _subject_for(user, binding.obj.get("subjects"), binding_namespace)
            if subject is None:
                continue
            rules = self._role_rules(binding.obj.get("roleRef") or {}, binding_namespace)
            if isinstance(rules, str):
                errors.append(rules)
                continue
            source = _describe(binding.obj, binding_namespace, subject)
            yield from ((source, rule) for rule in rules)

    def authorize(self, user: User, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) as RBAC gives them: `RBAC: allowed by ...` naming the first binding that allows,
        or for a denial the broken role references met on the way ("" when there were none)."""
        if user.superuser:
            return True, ""  # the privileged-group authorizer gives no reason
        errors: list[str] = []
        for source, rule in self._visit(user, attrs.namespace, errors):
            if rule_allows(rule, attrs):
                return True, f"RBAC: allowed by {source}"
        unique = list(dict.fromkeys(errors))
        if not unique:
            return False, ""
        return False, "RBAC: " + (unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]")

    def rules_for(self, user: User, namespace: str) -> tuple[list[Rule], list[str]]:
        """Every rule that applies to `user` in `namespace` (RulesFor), and the broken role references."""
        errors: list[str] = []
        rules = [rule for _, rule in self._visit(user, namespace, errors)]
        return (EVERYTHING + rules if user.superuser else rules), list(dict.fromkeys(errors))


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
