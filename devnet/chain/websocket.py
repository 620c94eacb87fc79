"""`/websocket` on the RPC port: JSON-RPC over websocket with event subscriptions (rpc/jsonrpc/server
ws_handler.go). Each connection has one writer task fed by a queue, so publishing a block never waits on a
slow client; a client that falls 200 messages behind loses its subscription with upstream's -32000 error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from devnet.chain.go_json import REQUEST_STRUCT, GoJSONError, decode_stream_value, go_type_name
from devnet.chain.jsonrpc import Registry, failure, parse_error
from devnet.chain.pubsub import EventBus

log = logging.getLogger(__name__)

BUFFER_LIMIT = 200  # CometBFT's experimental_subscription_buffer_size default
PING_PERIOD = 27.0  # defaultWSPingPeriod: (30s read wait * 9) / 10
CLOSE_TIMEOUT = 1.0


class WSConnection:
    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None, hub: WebsocketHub
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.hub = hub
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending = 0
        self._drained = asyncio.Event()
        self._drained.set()

    # ---- pubsub.Client -----------------------------------------------------------------------------------

    def deliver(self, text: str) -> bool:
        if self._pending >= BUFFER_LIMIT:
            return False
        self.deliver_now(text)
        return True

    def deliver_now(self, text: str) -> None:
        self._pending += 1
        self._drained.clear()
        self._queue.put_nowait(text)

    # ---- subscriptions (called by the RPC methods with this connection) ----------------------------------

    def subscribe(self, query: str, request_id: Any) -> None:
        self.hub.bus.subscribe(self, query, request_id)

    def unsubscribe(self, query: str) -> None:
        self.hub.bus.unsubscribe(self, query)

    def unsubscribe_all(self) -> None:
        self.hub.bus.unsubscribe_all(self)

    # ---- lifecycle ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name="ws-writer")
        try:
            async for message in self.ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    reply = await self._handle(message.data)
                    if reply is not None:
                        self.deliver_now(reply)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.hub.bus.drop_client(self)
            self._queue.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer

    async def _handle(self, data: str | bytes) -> str | None:
        # ws_handler.go reads each message with json.NewDecoder(...).Decode: Go's texts, trailing bytes
        # ignored, and a non-object fails in RPCRequest.UnmarshalJSON (devnet/chain/go_json.py).
        text = data.decode(errors="replace") if isinstance(data, bytes) else data  # Go keeps going too
        try:
            request = decode_stream_value(text)
        except GoJSONError as err:
            return failure(None, parse_error(f"error unmarshaling request: {err}"), with_id=False)
        if request is None:
            return None  # `null` leaves the id nil: a notification, answered by nothing
        if not isinstance(request, dict):
            kind = go_type_name(request)
            error = parse_error(
                f"error unmarshaling request: json: cannot unmarshal {kind} into Go value of type {REQUEST_STRUCT}"
            )
            return failure(None, error, with_id=False)
        return await self.hub.registry.dispatch(request, connection=self)

    async def _write_loop(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._drained.set()

    def abort(self) -> None:
        """Drop the TCP connection with no close frame, like a crashed node."""
        self.hub.bus.drop_client(self)
        if self.transport is not None:
            self.transport.abort()

    async def close(self) -> None:
        # Let queued messages (e.g. "subscription was canceled") reach the client before the close frame.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), CLOSE_TIMEOUT / 2)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=1001, message=b"server shutting down"), CLOSE_TIMEOUT)
        if self.transport is not None:
            self.transport.abort()


class WebsocketHub:
    def __init__(self, bus: EventBus, registry: Registry) -> None:
        self.bus = bus
        self.registry = registry
        self.connections: set[WSConnection] = set()
        self._closing = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self._closing:
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse(heartbeat=PING_PERIOD, timeout=CLOSE_TIMEOUT, max_msg_size=1 << 20)
        transport = request.transport
        await ws.prepare(request)
        connection = WSConnection(ws, transport, self)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
        return ws

    def drop_all(self) -> int:
        dropped = len(self.connections)
        for connection in list(self.connections):
            connection.abort()
        return dropped

    async def close_all(self) -> None:
        self._closing = True
        self.bus.cancel_all("CometBFT exited")
        await asyncio.gather(*(c.close() for c in list(self.connections)), return_exceptions=True)
