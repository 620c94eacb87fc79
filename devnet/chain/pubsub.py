"""The event bus behind `/websocket` subscriptions (CometBFT 0.38 rpc/core/events.go + internal/pubsub).

Limits and errors are upstream's: at most 100 subscribing clients and 5 subscriptions each, queries of at
most 512 bytes, `already subscribed` when the canonical query text repeats, `subscription not found` on a
bad unsubscribe. Every notification reuses the id of the subscribe request. Payloads are rendered once per
event and spliced behind a per-subscription prefix, so fan-out costs one string concatenation per client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from devnet.chain.encoding import dumps
from devnet.chain.jsonrpc import failure, server_error
from devnet.chain.query import Query, QueryError, parse_query

MAX_QUERY_LENGTH = 512
MAX_SUBSCRIPTION_CLIENTS = 100
MAX_SUBSCRIPTIONS_PER_CLIENT = 5
SLOW_CLIENT_REASON = "client is not pulling messages fast enough"


class SubscribeError(ValueError):
    """Refused subscribe/unsubscribe; the text is what CometBFT puts in the error's `data`."""


class Client(Protocol):
    def deliver(self, text: str) -> bool:
        """Queue one message; False when the client's buffer is full."""

    def deliver_now(self, text: str) -> None:
        """Queue a control message regardless of the buffer limit."""


@dataclass(eq=False)
class Subscription:
    client: Client
    query: Query
    key: str
    request_id: Any
    prefix: str  # '{"jsonrpc":"2.0","id":…,"result":{"query":…,"data":'


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[Client, dict[str, Subscription]] = {}

    def subscription_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def client_count(self) -> int:
        return len(self._subs)

    def subscribe(self, client: Client, query_text: str, request_id: Any) -> Subscription:
        existing = self._subs.get(client, {})
        if client not in self._subs and len(self._subs) >= MAX_SUBSCRIPTION_CLIENTS:
            raise SubscribeError(f"max_subscription_clients {MAX_SUBSCRIPTION_CLIENTS} reached")
        if len(existing) >= MAX_SUBSCRIPTIONS_PER_CLIENT:
            raise SubscribeError(f"max_subscriptions_per_client {MAX_SUBSCRIPTIONS_PER_CLIENT} reached")
        if len(query_text.encode()) > MAX_QUERY_LENGTH:
            raise SubscribeError("maximum query length exceeded")
        query = self._parse(query_text)
        key = str(query)
        if key in existing:
            raise SubscribeError("already subscribed")
        prefix = f'{{"jsonrpc":"2.0","id":{dumps(request_id)},"result":{{"query":{dumps(query_text)},"data":'
        subscription = Subscription(client, query, key, request_id, prefix)
        self._subs.setdefault(client, {})[key] = subscription
        return subscription

    def unsubscribe(self, client: Client, query_text: str) -> None:
        key = str(self._parse(query_text))
        subs = self._subs.get(client, {})
        if key not in subs:
            raise SubscribeError("subscription not found")
        del subs[key]
        if not subs:
            self._subs.pop(client, None)

    def unsubscribe_all(self, client: Client) -> None:
        if not self._subs.pop(client, None):
            raise SubscribeError("subscription not found")

    def drop_client(self, client: Client) -> None:
        self._subs.pop(client, None)

    def cancel_all(self, reason: str) -> None:
        """Server shutdown: every subscriber is told its subscription was canceled."""
        for client, subs in list(self._subs.items()):
            for sub in subs.values():
                client.deliver_now(self._canceled(sub, reason))
        self._subs.clear()

    def publish(
        self, events: Mapping[str, Sequence[str]], event_types: frozenset[str], payload: Callable[[], str]
    ) -> int:
        """Deliver one event to every matching subscription; returns how many received it."""
        body: str | None = None
        delivered = 0
        for client, subs in list(self._subs.items()):
            for sub in list(subs.values()):
                if not sub.query.matches(events, event_types):
                    continue
                if body is None:
                    body = payload() + "}}"
                if client.deliver(sub.prefix + body):
                    delivered += 1
                else:
                    subs.pop(sub.key, None)
                    client.deliver_now(self._canceled(sub, SLOW_CLIENT_REASON))
            if not subs:
                self._subs.pop(client, None)
        return delivered

    def wants(self, events: Mapping[str, Sequence[str]], event_types: frozenset[str]) -> bool:
        return any(
            s.query.matches(events, event_types) for subs in self._subs.values() for s in subs.values()
        )

    @staticmethod
    def _canceled(sub: Subscription, reason: str) -> str:
        return failure(sub.request_id, server_error(f"subscription was canceled (reason: {reason})"))

    @staticmethod
    def _parse(query_text: str) -> Query:
        try:
            return parse_query(query_text)
        except QueryError as err:
            raise SubscribeError(f"failed to parse query: {err}") from None
