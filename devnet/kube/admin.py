"""Non-Kubernetes admin endpoints under `/devnet/`, for tests and tools in other processes.

  GET    /devnet/faults            -> {"faults": [<fault>, ...]}
  POST   /devnet/faults  <fault>   -> 201 <fault with its "id">     (bodies: see devnet.kube.faults)
  DELETE /devnet/faults            -> {"cleared": <n>}
  DELETE /devnet/faults/{id}       -> {"removed": "<id>"} or 404
  POST   /devnet/tick    {"count": n}?         -> {"writes": w, "resourceVersion": "<rv>"}
  POST   /devnet/settle  {"max_ticks": n}?     -> {"ticks": t, "resourceVersion": "<rv>"}
  POST   /devnet/clock   {"advance_seconds": s} -> {"offset_seconds": total}
  GET    /devnet/step                          -> {"step_seconds": s}
  PUT    /devnet/step    {"step_seconds": s}   -> {"step_seconds": s}   (0 stops the background controllers)
  GET    /devnet/stats                         -> {"requests": <Kubernetes API requests served>,
                                                  "denied": <of those, 401/403>, "resourceVersion": rv}
  GET    /devnet/overlap                       -> {"workloads": [{"kind": "deployments"|"statefulsets",
                                                  "namespace", "name", "max_running": n}, ...]}: the most pods
                                                  of each workload ever Running at once (terminating ones
                                                  included): 2 for a one-replica workload means two signers;
                                                  "overlaps": the moments that happened (one-replica ones)
Errors are `{"error": "<reason>"}` with status 400 / 404 / 405.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from devnet.kube.faults import Faults, FaultSpecError


class OverlapRecorder(Protocol):
    def max_running(self) -> dict[tuple[str, str, str], int]: ...
    def overlaps(self) -> dict[tuple[str, str, str], int]: ...


class Administered(Protocol):
    faults: Faults
    controllers: OverlapRecorder
    step_seconds: float
    requests_served: int

    @property
    def requests_denied(self) -> int: ...
    @property
    def resource_version(self) -> str: ...
    @property
    def clock_offset(self) -> float: ...
    def tick(self) -> int: ...
    def settle(self, max_ticks: int = ...) -> int: ...
    def advance_clock(self, seconds: float) -> None: ...


def _reply(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _fail(status: int, reason: str) -> web.Response:
    return _reply({"error": reason}, status)


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    return json.loads(raw)


def _number(body: dict[str, Any], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} must be a non-negative number")
    return float(value)


class AdminApi:
    def __init__(self, emulator: Administered) -> None:
        self._emulator = emulator

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request) if request.method in ("POST", "PUT") else {}
            if not isinstance(body, dict):
                return _fail(400, "the body must be a JSON object")
            return self._route(request.method, request.path.rstrip("/"), body)
        except (ValueError, FaultSpecError) as exc:
            return _fail(400, str(exc))

    def _route(self, method: str, path: str, body: dict[str, Any]) -> web.Response:
        emulator = self._emulator
        faults = emulator.faults
        if path == "/devnet/stats" and method == "GET":
            return _reply(
                {
                    "requests": emulator.requests_served,
                    "denied": emulator.requests_denied,
                    "resourceVersion": emulator.resource_version,
                }
            )
        if path == "/devnet/overlap" and method == "GET":
            overlaps = emulator.controllers.overlaps()
            return _reply(
                {
                    "workloads": [
                        {
                            "kind": kind,
                            "namespace": namespace,
                            "name": name,
                            "max_running": count,
                            "overlaps": overlaps.get((kind, namespace, name), 0),
                        }
                        for (kind, namespace, name), count in sorted(
                            emulator.controllers.max_running().items()
                        )
                    ]
                }
            )
        if path == "/devnet/faults":
            if method == "GET":
                return _reply({"faults": faults.active()})
            if method == "POST":
                return _reply(faults.add(body).to_json(), 201)
            if method == "DELETE":
                count = len(faults.active())
                faults.clear()
                return _reply({"cleared": count})
        elif path.startswith("/devnet/faults/"):
            fault_id = path.removeprefix("/devnet/faults/")
            if method == "DELETE":
                if faults.remove(fault_id):
                    return _reply({"removed": fault_id})
                return _fail(404, f"no fault {fault_id!r}")
        elif path == "/devnet/tick":
            if method == "POST":
                count = int(_number(body, "count", 1))
                writes = sum(emulator.tick() for _ in range(count))
                return _reply({"writes": writes, "resourceVersion": emulator.resource_version})
        elif path == "/devnet/settle":
            if method == "POST":
                ticks = emulator.settle(int(_number(body, "max_ticks", 1000)))
                return _reply({"ticks": ticks, "resourceVersion": emulator.resource_version})
        elif path == "/devnet/clock":
            if method == "POST":
                emulator.advance_clock(_number(body, "advance_seconds"))
                return _reply({"offset_seconds": emulator.clock_offset})
        elif path == "/devnet/step":
            if method == "GET":
                return _reply({"step_seconds": emulator.step_seconds})
            if method == "PUT":
                emulator.step_seconds = _number(body, "step_seconds")
                return _reply({"step_seconds": emulator.step_seconds})
        else:
            return _fail(404, f"no admin endpoint {path}")
        return _fail(405, f"{method} is not allowed on {path}")
