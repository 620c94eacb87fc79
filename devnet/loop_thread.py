"""Run an asyncio service on its own event loop in a background thread.

The official clients we test against (kubernetes, cosmpy, kubectl) are synchronous; serving the emulators
from another thread lets a plain test call them without blocking the server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class AsyncService(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class LoopThread:
    """A daemon thread running one event loop; `call` runs a coroutine there and returns its result."""

    def __init__(self, name: str = "devnet-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Callable[[], Awaitable[T] | T]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


@contextmanager
def serve_in_thread(service: AsyncService) -> Iterator[LoopThread]:
    """Start `service` on a background loop, yield the loop, stop it on exit."""
    lt = LoopThread(type(service).__name__)
    try:
        lt.call(service.start())
        yield lt
    finally:
        try:
            lt.call(service.stop())
        finally:
            lt.close()
