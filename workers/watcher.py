"""`peersync watch`: follow the provider chain's CometBFT websocket and hand each endpoint edit over at once.

Per MsgEditValidator/MsgCreateValidator tx it signals the registry (`refresh`, with the tx's height and
sender); the registry reads the validator and, when its endpoint in effect moved, starts the change: the
registry is the one writer of intent, the watcher only makes it look now. It reconnects with exponential backoff
and jitter, resubscribes, and asks the registry for a full refresh on every (re)connect, so nothing that
happened while it was away is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import websockets
from prometheus_client import Counter, Gauge
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError

from core.addresses import AddressError, account_to_valoper
from workers.registry_start import registry_start_options
from workers.settings import Settings
from workflows.registry import RefreshRequest, RegistryWorkflow

log = logging.getLogger("peersync.watch")

QUERIES = {
    1: "tm.event='Tx' AND message.action='/cosmos.staking.v1beta1.MsgEditValidator'",
    2: "tm.event='Tx' AND message.action='/cosmos.staking.v1beta1.MsgCreateValidator'",
}
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
SUBSCRIBE_TIMEOUT = 10.0

EVENTS = Counter("peersync_watcher_events", "Validator txs seen on the websocket", ["outcome"])
RECONNECTS = Counter("peersync_watcher_reconnects", "Websocket (re)connections")
CONNECTED = Gauge("peersync_watcher_connected", "1 while subscribed to the chain")


class TxSeen(BaseModel):
    height: int
    sender: str  # account address (message.sender)
    code: int


def parse_event(message: dict[str, Any]) -> TxSeen | None:
    """A subscription notification, in either websocket shape (fields omitted when zero, or present)."""
    result = message.get("result") or {}
    events = result.get("events") or {}
    value = ((result.get("data") or {}).get("value") or {}).get("TxResult") or {}
    if not events or not value:
        return None  # the subscribe acknowledgement, or another kind of event
    senders, heights = events.get("message.sender") or [], events.get("tx.height") or []
    if not senders or not heights:
        return None
    code = int((value.get("result") or {}).get("code") or 0)
    return TxSeen(height=int(heights[0]), sender=senders[-1], code=code)


def backoff_delays() -> Any:
    """Exponential with full jitter: many watchers never reconnect in lockstep."""
    delay = BACKOFF_FIRST
    while True:
        yield random.uniform(0, delay)
        delay = min(delay * 2, BACKOFF_MAX)


class Watcher:
    def __init__(self, settings: Settings, client: Client) -> None:
        self.settings = settings
        self.client = client
        self.ws_url = (
            settings.chain_rpc_url.replace("http://", "ws://").replace("https://", "wss://") + "/websocket"
        )
        self.connected = False

    async def run(self, stop: asyncio.Event) -> None:
        delays = backoff_delays()
        while not stop.is_set():
            try:
                await self._session(stop)
                delays = backoff_delays()
            except (OSError, websockets.WebSocketException, TimeoutError, ValueError, RPCError) as exc:
                # A tx whose hand-over to Temporal failed is not lost either: the reconnect's full refresh
                # (once Temporal answers again) covers it.
                delay = next(delays)
                log.warning(
                    "%s: %s; reconnecting in %.1fs",
                    "Temporal" if isinstance(exc, RPCError) else f"chain websocket {self.ws_url}",
                    exc or type(exc).__name__,
                    delay,
                )
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
            finally:
                self.connected = False
                CONNECTED.set(0)

    async def _session(self, stop: asyncio.Event) -> None:
        async with websockets.connect(self.ws_url, ping_interval=20, ping_timeout=20, open_timeout=10) as ws:
            for sub_id, query in QUERIES.items():
                await ws.send(
                    json.dumps(
                        {"jsonrpc": "2.0", "method": "subscribe", "id": sub_id, "params": {"query": query}}
                    )
                )
            await self._await_acks(ws)
            RECONNECTS.inc()
            self.connected = True
            CONNECTED.set(1)
            log.info("subscribed to %s; asking the registry for a full refresh", self.ws_url)
            await self.nudge(RefreshRequest(reason="watcher connected"))
            closing = asyncio.ensure_future(stop.wait())
            try:
                while True:
                    receiving = asyncio.ensure_future(ws.recv())
                    done, _ = await asyncio.wait({receiving, closing}, return_when=asyncio.FIRST_COMPLETED)
                    if closing in done:
                        receiving.cancel()
                        return
                    await self.handle(json.loads(receiving.result()))
            finally:
                closing.cancel()

    async def _await_acks(self, ws: Any) -> None:
        """Wait until the node has acknowledged every subscription: only from then on does each new tx
        reach us, so only then may the full refresh run and /healthz say connected. A refused subscription
        raises (reconnect with backoff); an event of an acknowledged one that arrives meanwhile is handled."""
        waiting = set(QUERIES)
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            while waiting:
                message = json.loads(await ws.recv())
                if message.get("id") in waiting and message.get("result") == {}:
                    waiting.discard(message["id"])
                else:
                    await self.handle(message)

    async def handle(self, message: dict[str, Any]) -> None:
        if "error" in message:
            raise ValueError(f"subscription error: {message['error']}")
        seen = parse_event(message)
        if seen is None:
            return
        if seen.code != 0:
            EVENTS.labels("failed-tx").inc()
            log.info("height %d: failed tx from %s (code %d) ignored", seen.height, seen.sender, seen.code)
            return
        try:
            valoper = account_to_valoper(seen.sender, self.settings.bech32_prefix)
        except AddressError as exc:
            EVENTS.labels("bad-sender").inc()
            log.warning("height %d: sender %r is not an account address: %s", seen.height, seen.sender, exc)
            return
        # The registry is the one writer of intent: it reads the validator, names the change and starts it.
        await self.nudge(
            RefreshRequest(height=seen.height, reason=f"{valoper} edited at height {seen.height}")
        )
        EVENTS.labels("signalled").inc()
        log.info("height %d: %s edited its validator; the registry refreshes now", seen.height, valoper)

    async def nudge(self, request: RefreshRequest) -> None:
        await self.client.start_workflow(
            RegistryWorkflow.run,
            **registry_start_options(self.settings),
            start_signal="refresh",
            start_signal_args=[request],
        )
