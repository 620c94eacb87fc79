"""The apiserver's filter chain in front of every Kubernetes API request: authenticate, then authorize.

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

from devnet.kube.auth import Tokens
from devnet.kube.errors import ApiError
from devnet.kube.rbac import Authorizer, forbidden
from devnet.kube.requestinfo import request_attributes

KEPT_DENIALS = 1000


class AccessControl:
    def __init__(self, tokens: Tokens, authorizer: Authorizer) -> None:
        self.tokens = tokens
        self.authorizer = authorizer
        self.denied = 0
        self._denials: deque[dict[str, Any]] = deque(maxlen=KEPT_DENIALS)
        self._lock = threading.Lock()  # denials are read from test threads

    def check(self, method: str, path: str, query: Mapping[str, str], authorization: str | None) -> None:
        """Raise the apiserver's 401 or 403 Status, or return when the request may proceed."""
        try:
            user = self.tokens.authenticate(authorization)
        except ApiError as error:
            self._record(error, {"user": None, "method": method, "path": path})
            raise
        attrs = request_attributes(method, path, query)
        allowed, reason = self.authorizer.authorize(user, attrs)
        if allowed:
            return
        error = forbidden(user, attrs, reason)
        self._record(
            error,
            {
                "user": user.name,
                "method": method,
                "path": path,
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
