"""The apiserver's filter chain in front of every Kubernetes API request: authenticate, impersonate (the
Impersonate-* headers, devnet.kube.impersonation), then authorize.

Runs before fault injection and routing (as real filters run before the handlers), so a denied request never
consumes a fault and a service account asking for an unserved resource sees 403, not 404. Denials are
counted and the latest kept, so a test can assert on what its subject was refused even when the client under
test swallows the error.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping

from devnet.kube.auth import Tokens, User
from devnet.kube.errors import ApiError
from devnet.kube.impersonation import impersonation
from devnet.kube.rbac import Authorizer, forbidden
from devnet.kube.requestinfo import Attributes, request_attributes

KEPT_DENIALS = 1000


class AccessControl:
    def __init__(self, tokens: Tokens, authorizer: Authorizer) -> None:
        self.tokens = tokens
        self.authorizer = authorizer
        self.denied = 0
        self._denials: deque[dict[str, Any]] = deque(maxlen=KEPT_DENIALS)
        self._lock = threading.Lock()  # denials are read from test threads

    def check(self, method: str, path: str, query: Mapping[str, str], headers: MultiMapping[str]) -> User:
        """The user the request runs as, or the apiserver's 401, 403 (or 500) Status raised."""
        try:
            user = self.tokens.authenticate(headers.get("Authorization"))
            impersonated = impersonation(path, headers)
        except ApiError as error:
            self._record(error, {"user": None, "method": method, "path": path})
            raise
        if impersonated is not None:
            for attrs in impersonated.checks:
                self._authorize(user, method, attrs)
            user = impersonated.user
        self._authorize(user, method, request_attributes(method, path, query))
        return user

    def _authorize(self, user: User, method: str, attrs: Attributes) -> None:
        allowed, reason = self.authorizer.authorize(user, attrs)
        if allowed:
            return
        error = forbidden(user, attrs, reason)
        self._record(
            error,
            {
                "user": user.name,
                "method": method,
                "path": attrs.path,
                "verb": attrs.verb,
                "group": attrs.api_group,
                "resource": attrs.resource,
                "subresource": attrs.subresource,
                "namespace": attrs.namespace,
                "name": attrs.name,
            },
        )
        raise error

    def _record(self, error: ApiError, denial: dict[str, Any]) -> None:
        with self._lock:
            self.denied += 1
            self._denials.append({**denial, "code": error.code, "message": error.message})

    def denials(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._denials)

    def clear_denials(self) -> None:
        with self._lock:
            self._denials.clear()
