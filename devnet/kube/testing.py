"""Test support for code that runs against the emulator: kubectl's rollout logic, a controller stepper and a
raw HTTP helper (for the admin endpoints and for requests the official client cannot make).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client


class Ticks(Protocol):
    def tick(self) -> int: ...


def deployment_rollout_status(d: client.V1Deployment) -> tuple[bool, str]:
    """kubectl's DeploymentStatusViewer (kubernetes.md §2): (done, message); raises on a timed-out rollout."""
    status = d.status
    if (d.metadata.generation or 0) <= (status.observed_generation or 0):
        progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
        if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
            raise RuntimeError(f'deployment "{d.metadata.name}" exceeded its progress deadline')
        updated = status.updated_replicas or 0
        replicas = status.replicas or 0
        available = status.available_replicas or 0
        if d.spec.replicas is not None and updated < d.spec.replicas:
            return False, f"{updated} out of {d.spec.replicas} new replicas have been updated..."
        if replicas > updated:
            return False, f"{replicas - updated} old replicas are pending termination..."
        if available < updated:
            return False, f"{available} of {updated} updated replicas are available..."
        return True, f'deployment "{d.metadata.name}" successfully rolled out'
    return False, "Waiting for deployment spec update to be observed..."


def statefulset_rollout_complete(s: client.V1StatefulSet) -> bool:
    """The strict check of kubernetes.md §2 for partition 0: currentRevision must have caught up."""
    status = s.status
    return (
        (status.observed_generation or 0) >= (s.metadata.generation or 0)
        and (status.ready_replicas or 0) >= (s.spec.replicas or 0)
        and (status.updated_replicas or 0) >= (s.spec.replicas or 0)
        and status.current_revision == status.update_revision
    )


def tick_until(emulator: Ticks, condition: Callable[[], bool], max_ticks: int = 50) -> int:
    """Step the controllers until `condition` holds; returns the ticks it took."""
    for ticks in range(max_ticks + 1):
        if condition():
            return ticks
        emulator.tick()
    raise AssertionError(f"condition still false after {max_ticks} ticks")


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    url: str,
    method: str = "GET",
    body: bytes | dict[str, Any] | list[Any] | None = None,
    content_type: str | None = None,
    timeout: float = 10,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """One HTTP request (`headers` e.g. an Authorization); error statuses are returned, not raised."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if content_type:
        request.add_header("Content-Type", content_type)
    # An https emulator (tls=True) has a throwaway self-signed certificate: nothing to verify it against here.
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return RawResponse(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return RawResponse(error.code, dict(error.headers), error.read())


def inject_fault(emulator_url: str, fault: dict[str, Any]) -> dict[str, Any]:
    """POST /devnet/faults from any process; returns the fault with its id."""
    response = raw_request(f"{emulator_url}/devnet/faults", "POST", fault)
    if response.status != 201:
        raise ValueError(f"fault refused ({response.status}): {response.body.decode()}")
    result: dict[str, Any] = response.json()
    return result
