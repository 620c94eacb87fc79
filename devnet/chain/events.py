"""ABCI events and their three renderings: jsonpb (HTTP, REST), the flattened `type.key -> [values]` map
(websocket `result.events` and query matching), and nothing else — one source, so they never disagree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Attribute:
    key: str
    value: str
    index: bool = True


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    attributes: tuple[Attribute, ...]

    @classmethod
    def of(cls, type_: str, *pairs: tuple[str, str]) -> Event:
        return cls(type_, tuple(Attribute(k, v) for k, v in pairs))

    def with_attribute(self, key: str, value: str) -> Event:
        return Event(self.type, (*self.attributes, Attribute(key, value)))


def events_jsonpb(events: Iterable[Event]) -> list[dict[str, Any]]:
    """jsonpb with EmitDefaults: attribute `index` always printed, as in /tx_search and the gateway."""
    return [
        {
            "type": e.type,
            "attributes": [{"key": a.key, "value": a.value, "index": a.index} for a in e.attributes],
        }
        for e in events
    ]


def flatten(events: Iterable[Event], into: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """CometBFT's composite-key map: every attribute, indexed or not; repeated keys accumulate."""
    flat: dict[str, list[str]] = into if into is not None else {}
    for e in events:
        for a in e.attributes:
            flat.setdefault(f"{e.type}.{a.key}", []).append(a.value)
    return flat
