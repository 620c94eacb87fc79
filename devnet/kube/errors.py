"""Kubernetes `Status` failures, shaped like the apiserver's `k8s.io/apimachinery/pkg/api/errors`.

Clients key on these bodies (`reason` tells Conflict from AlreadyExists, both 409), so the messages
follow the apiserver's wording exactly where callers are known to parse them.
"""

from __future__ import annotations

from typing import Any

from devnet.kube.resources import ResourceType

SUPPORTED_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after_seconds = retry_after_seconds

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType, name: str, kind: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name} if name else {}  # Go's omitempty: no name, no key
    if rt.group:
        details["group"] = rt.group
    details["kind"] = kind or rt.plural
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        _details(rt, name),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422. `causes` are (field, cause reason, message), e.g. ("metadata.name", "FieldValueRequired", "Required value")."""
    summary = ", ".join(f"{field}: {msg}" for field, _, msg in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [{"reason": reason, "message": msg, "field": field} for field, reason, msg in causes]
    return ApiError(
        422,
        "Invalid",
        f'{rt.kind}{"." + rt.group if rt.group else ""} "{name}" is invalid: {summary}',
        details,
    )


def patch_rejected(message: str) -> ApiError:
    """What the apiserver answers when a JSON patch cannot be applied (a failed `test` included)."""
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(SUPPORTED_PATCH_TYPES)}",
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def no_such_resource() -> ApiError:
    # The apiserver's NewGenericServerResponse carries an empty details object (not none).
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
    )


def expired(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


REASON_BY_CODE = {
    429: "TooManyRequests",
    500: "InternalError",
    502: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def server_error(code: int, message: str | None = None, retry_after: int | None = None) -> ApiError:
    reason = REASON_BY_CODE.get(code, "InternalError")
    message = message or {
        429: "Too many requests, please try again later.",
        503: "the server is currently unable to handle the request",
        504: "the server was unable to return a response in the time allotted, but may still be processing the request",
    }.get(code, "Internal error occurred: injected fault")
    details: dict[str, Any] = {"causes": [{"message": message}]}
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    return ApiError(code, reason, message, details, retry_after_seconds=retry_after)


def internal(message: str) -> ApiError:
    return ApiError(
        500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]}
    )
