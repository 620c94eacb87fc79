"""Fault injection: what a test (in-process or over `POST /devnet/faults`) can make the cluster do wrong.

Fault JSON bodies (`type` picks the kind; filters are optional and narrow where a fault applies):
- `{"type": "error", "status": 503, "count": 2, "method": "PUT", "path_prefix": "/api/v1/", "retry_after": 0}`
  the next `count` (default 1) matching API requests fail with a real Status body of that code (default 500).
  `retry_after` sets a Retry-After header (default: 1 for 429, none otherwise); note that the v37 client and
  client-go transparently retry 429/5xx responses that carry one (up to 10 times).
- `{"type": "conflict", "count": 3, "resource": "configmaps", "namespace": "ns", "name": "peers"}`
  the next `count` (default 1) updates (PUT/PATCH) of a matching existing object get 409 Conflict.
- `{"type": "latency", "seconds": 0.2, "count": 10, "method": "GET", "path_prefix": "/apis/"}`
  matching requests wait `seconds` first; `count` omitted = until cleared.
- `{"type": "stall", "resource": "deployments", "namespace": "ns", "name": "node"}`
  the workload's controller still observes generations but makes no rollout progress; a Deployment then
  reports `Progressing=False, reason ProgressDeadlineExceeded` after `spec.progressDeadlineSeconds`.
- `{"type": "never_ready", "namespace": "ns", "name": "node", "count": 1}` the next `count` pods created for
  that workload never become Ready; or `{"type": "never_ready", "namespace": "ns", "pod": "node-0"}` the pod of
  that name (now or re-created) is never Ready.
Faults stay until used up or cleared.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any

from devnet.kube import resources
from devnet.kube.errors import ApiError, server_error

FAULT_TYPES = ("error", "conflict", "latency", "stall", "never_ready")
_FIELDS = {
    "error": {"status", "count", "method", "path_prefix", "retry_after"},
    "conflict": {"count", "resource", "namespace", "name"},
    "latency": {"seconds", "count", "method", "path_prefix"},
    "stall": {"resource", "namespace", "name"},
    "never_ready": {"count", "namespace", "name", "pod"},
}


@dataclass
class Fault:
    id: str
    type: str
    count: int | None = None  # remaining uses; None = until cleared
    status: int | None = None
    retry_after: int | None = None
    seconds: float | None = None
    method: str | None = None
    path_prefix: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    pod: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def _matches_request(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )

    def _matches_object(self, plural: str, namespace: str, name: str) -> bool:
        return (
            (self.resource is None or self.resource == plural)
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
        )


class FaultSpecError(ValueError):
    pass


def _parse(spec: Any, fault_id: str) -> Fault:
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault is a JSON object")
    kind = spec.get("type")
    if kind not in FAULT_TYPES:
        raise FaultSpecError(f"fault type must be one of {', '.join(FAULT_TYPES)}")
    unknown = set(spec) - _FIELDS[kind] - {"type"}
    if unknown:
        raise FaultSpecError(f"unknown field(s) for a {kind} fault: {', '.join(sorted(unknown))}")
    fault = Fault(id=fault_id, type=kind)
    count = spec.get("count", None if kind in ("latency", "stall") else 1)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise FaultSpecError("count must be a positive integer")
    fault.count = count
    for key in ("method", "path_prefix", "namespace", "name", "pod"):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            raise FaultSpecError(f"{key} must be a string")
        setattr(fault, key, value)
    if spec.get("resource") is not None:
        try:
            fault.resource = resources.resolve(str(spec["resource"])).plural
        except KeyError as exc:
            raise FaultSpecError(str(exc)) from None
    if kind == "error":
        status = spec.get("status", 500)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultSpecError("status must be an HTTP error code (400-599)")
        fault.status = status
        retry_after = spec.get("retry_after", 1 if status == 429 else None)
        if retry_after is not None and (
            not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
        ):
            raise FaultSpecError("retry_after must be a non-negative integer (seconds)")
        fault.retry_after = retry_after
    if kind == "latency":
        seconds = spec.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 60:
            raise FaultSpecError("seconds must be a number between 0 and 60")
        fault.seconds = float(seconds)
    if kind in ("stall", "never_ready") and not (fault.namespace and (fault.name or fault.pod)):
        raise FaultSpecError(
            f"a {kind} fault needs namespace and name" + (" (or pod)" if kind == "never_ready" else "")
        )
    if kind == "never_ready" and fault.pod:
        fault.count = None  # a named pod stays un-Ready until the fault is cleared
    if kind == "stall" and fault.resource not in (None, "deployments", "statefulsets"):
        raise FaultSpecError("a stall fault applies to deployments or statefulsets")
    return fault


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = _parse(spec, f"f{next(self._ids)}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def _consume(self, fault: Fault) -> None:
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)

    def _take(self, kind: str, predicate: Any) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.type == kind and predicate(fault):
                    self._consume(fault)
                    return fault
        return None

    def latency(self, method: str, path: str) -> float:
        if not self._faults:
            return 0.0
        fault = self._take("latency", lambda f: f._matches_request(method, path))
        return (fault.seconds or 0.0) if fault else 0.0

    def take_error(self, method: str, path: str) -> ApiError | None:
        if not self._faults:
            return None
        fault = self._take("error", lambda f: f._matches_request(method, path))
        return server_error(fault.status or 500, retry_after=fault.retry_after) if fault else None

    def take_conflict(self, plural: str, namespace: str, name: str) -> bool:
        if not self._faults:
            return False
        return self._take("conflict", lambda f: f._matches_object(plural, namespace, name)) is not None

    def is_stalled(self, plural: str, namespace: str, name: str) -> bool:
        if not self._faults:
            return False
        with self._lock:
            return any(f.type == "stall" and f._matches_object(plural, namespace, name) for f in self._faults)

    def claim_never_ready(self, namespace: str, workload: str) -> bool:
        """Called once per pod a controller creates: does this new pod stay un-Ready forever?"""
        if not self._faults:
            return False
        return (
            self._take(
                "never_ready", lambda f: f.pod is None and f.namespace == namespace and f.name == workload
            )
            is not None
        )

    def pod_never_ready(self, namespace: str, pod: str) -> bool:
        if not self._faults:
            return False
        with self._lock:
            return any(
                f.type == "never_ready" and f.namespace == namespace and f.pod == pod for f in self._faults
            )

    def has_pod_faults(self) -> bool:
        with self._lock:
            return any(f.type == "never_ready" and f.pod for f in self._faults)

    def pod_faults(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(f.namespace or "", f.pod) for f in self._faults if f.type == "never_ready" and f.pod]
