"""Authentication: who a request is, from its `Authorization: Bearer <token>` header.

Tokens are random strings the emulator issues in process (`KubeEmulator.issue_token`) for a ServiceAccount,
the way a TokenRequest would; they are kept in memory only. As with the apiserver's bound service account
tokens, a token stops authenticating once its ServiceAccount is deleted (or re-created: the uid changes).
A request without an Authorization header is the cluster admin, so kubectl, the devnet and test setup keep
working unchanged with the credential-less kubeconfig. So is one with `admin_token`: over https kubectl asks
for a password unless the kubeconfig holds some credential, so the emulator's https kubeconfigs carry that.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from devnet.kube.errors import ApiError, not_found
from devnet.kube.resources import SERVICEACCOUNTS


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]

    @property
    def superuser(self) -> bool:
        # system:masters bypasses authorization in every real cluster (the privileged-group authorizer).
        return "system:masters" in self.groups


# kubeadm's admin.conf identity; it is what an unauthenticated request is taken to be here.
ADMIN = User("kubernetes-admin", ("system:masters", "system:authenticated"))


def service_account_user(namespace: str, name: str) -> User:
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


def unauthorized() -> ApiError:
    """The apiserver's 401: no details, whatever the path."""
    return ApiError(401, "Unauthorized", "Unauthorized")


@dataclass(frozen=True)
class _Grant:
    namespace: str
    service_account: str
    uid: str


# Looks up a ServiceAccount's current uid (None when it does not exist).
UidLookup = Callable[[str, str], str | None]


class Tokens:
    def __init__(self, uid_of: UidLookup) -> None:
        self._uid_of = uid_of
        self._grants: dict[str, _Grant] = {}
        self.admin_token = secrets.token_urlsafe(32)
        self._lock = threading.Lock()  # issued from a test thread, read on the server's loop

    def issue(self, namespace: str, service_account: str) -> str:
        """A new token for an existing ServiceAccount; ApiError 404 if there is none (as TokenRequest)."""
        uid = self._uid_of(namespace, service_account)
        if uid is None:
            raise not_found(SERVICEACCOUNTS, service_account)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[token] = _Grant(namespace, service_account, uid)
        return token

    def revoke(self, token: str) -> bool:
        with self._lock:
            return self._grants.pop(token, None) is not None

    def authenticate(self, authorization: str | None) -> User:
        """The request's user; ApiError 401 for a header that carries no valid token."""
        if authorization is None:
            return ADMIN
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.admin_token:
            return ADMIN
        with self._lock:
            grant = self._grants.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or self._uid_of(grant.namespace, grant.service_account) != grant.uid:
            raise unauthorized()
        return service_account_user(grant.namespace, grant.service_account)
