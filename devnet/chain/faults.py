"""Fault injection: fail or slow down the next N requests of a surface, with the error bodies a real
overloaded node or gateway sends, so client retry paths see what they would see in production.

Surfaces: `rpc` (CometBFT HTTP RPC and websocket upgrades on the RPC port), `rest` (the gateway), `nodes`
(emulated consumer-node RPCs). The admin API (`/devnet/…`) is never faulted: tests must always be able
to steer the emulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from devnet.chain.encoding import dumps
from devnet.chain.jsonrpc import URI_ID, failure, internal_error, json_response

Surface = Literal["rpc", "rest", "nodes"]
SURFACES: tuple[Surface, ...] = ("rpc", "rest", "nodes")
FAULT_MESSAGE = "devnet fault injected"


@dataclass
class SurfaceFaults:
    fail_remaining: int = 0
    fail_status: int | None = None
    slow_remaining: int = 0
    slow_delay: float = 0.0
    failed_total: int = 0
    slowed_total: int = 0
    served_total: int = 0  # every request to this surface, faulted or not (benchmarks count them)


@dataclass
class Faults:
    surfaces: dict[Surface, SurfaceFaults] = field(
        default_factory=lambda: {s: SurfaceFaults() for s in SURFACES}
    )

    def fail_next(self, surface: Surface, count: int, status: int | None = None) -> None:
        target = self.surfaces[surface]
        target.fail_remaining = count
        target.fail_status = status

    def slow_next(self, surface: Surface, count: int, delay: float) -> None:
        target = self.surfaces[surface]
        target.slow_remaining = count
        target.slow_delay = delay

    def clear(self) -> None:
        for surface in SURFACES:
            self.surfaces[surface] = SurfaceFaults()

    def snapshot(self) -> dict[str, dict[str, float | int | None]]:
        return {name: dict(vars(f)) for name, f in self.surfaces.items()}

    def middleware(self, surface: Surface) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def inject(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if request.path.startswith("/devnet/"):
                return await handler(request)
            state = self.surfaces[surface]
            state.served_total += 1
            if state.slow_remaining > 0:
                state.slow_remaining -= 1
                state.slowed_total += 1
                await asyncio.sleep(state.slow_delay)
            if state.fail_remaining > 0:
                state.fail_remaining -= 1
                state.failed_total += 1
                return self._failure(surface, state.fail_status)
            return await handler(request)

        return inject

    @staticmethod
    def _failure(surface: Surface, status: int | None) -> web.Response:
        if surface == "rest":
            # What the gateway sends when the gRPC backend is unavailable.
            code = status or 503
            body = {"code": 14, "message": f"{FAULT_MESSAGE}: service unavailable", "details": []}
            return web.Response(text=dumps(body), status=code, content_type="application/json")
        return json_response(failure(URI_ID, internal_error(FAULT_MESSAGE)), status=status or 500)
