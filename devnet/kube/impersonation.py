"""User impersonation: the `Impersonate-*` headers kubectl sends for `--as`, `--as-group` and `--as-uid`.

As k8s.io/apiserver/pkg/endpoints/filters/impersonation.go: every header is one `impersonate` request the
authenticated user must be allowed (resource `users`, `groups` or `serviceaccounts` in API group "", or
`uids` / `userextras/<key>` in authentication.k8s.io), and the request then runs as the impersonated user.
`system:serviceaccount:<ns>:<name>` means that ServiceAccount (checked as serviceaccounts <name> in <ns>) and,
without Impersonate-Group, its groups system:serviceaccounts and system:serviceaccounts:<ns>. A user other
than system:anonymous also gets system:authenticated. The uid and extras are checked, then not kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from multidict import MultiMapping

from devnet.kube.auth import User
from devnet.kube.errors import internal
from devnet.kube.requestinfo import Attributes

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
EXTRA_PREFIX = "impersonate-extra-"
AUTHENTICATION = "authentication.k8s.io"
ANONYMOUS = "system:anonymous"


@dataclass(frozen=True)
class Impersonation:
    user: User
    checks: tuple[Attributes, ...]  # each must be allowed for the requesting user


def _service_account(username: str) -> tuple[str, str] | None:
    """serviceaccount.SplitUsername: (namespace, name), or None for a name that is not a ServiceAccount's."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = username.removeprefix(SERVICE_ACCOUNT_PREFIX).split(":")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def impersonation(path: str, headers: MultiMapping[str]) -> Impersonation | None:
    """What the request's Impersonate-* headers ask for; None without any. ApiError 500 (as the apiserver)
    for groups, a uid or extras without Impersonate-User."""

    def check(resource: str, name: str, group: str = "", namespace: str = "", sub: str = "") -> Attributes:
        return Attributes("impersonate", path, True, group, "v1", resource, sub, namespace, name)

    username = headers.get("Impersonate-User")
    groups = list(headers.getall("Impersonate-Group", []))
    uid = headers.get("Impersonate-Uid")
    extras = [
        (k.lower()[len(EXTRA_PREFIX) :], v) for k, v in headers.items() if k.lower().startswith(EXTRA_PREFIX)
    ]
    if username is None:
        if groups or uid is not None or extras:
            raise internal("requested impersonation of groups, a uid or extras without impersonating a user")
        return None
    account = _service_account(username)
    checks = [
        check("serviceaccounts", account[1], namespace=account[0]) if account else check("users", username)
    ]
    checks += [check("groups", group) for group in groups]
    checks += [check("userextras", value, AUTHENTICATION, sub=unquote(key)) for key, value in extras]
    if uid is not None:
        checks.append(check("uids", uid, AUTHENTICATION))
    if account and not groups:
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{account[0]}"]
    if username == ANONYMOUS:
        if "system:unauthenticated" not in groups:
            groups.append("system:unauthenticated")
    elif not {"system:authenticated", "system:unauthenticated"} & set(groups):
        groups.append("system:authenticated")
    return Impersonation(User(username, tuple(groups)), tuple(checks))
