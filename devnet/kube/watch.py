"""Watch fan-out: store events, and one Watcher per open watch turning them into newline-delimited JSON lines.

A Watcher filters by namespace and selectors and translates selection changes the way the apiserver does: an
object modified out of the selection is a DELETED event, one modified into it an ADDED event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from devnet.kube.objects import Stored
from devnet.kube.resources import ResourceType
from devnet.kube.selectors import FieldSelector, LabelSelector


@dataclass(frozen=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    rt: ResourceType
    new: Stored  # for DELETED: the last state, carrying the deletion's resourceVersion
    old: Stored | None

    @property
    def resource_version(self) -> int:
        return self.new.resource_version


class Watcher:
    """One open watch: filters store events and queues newline-terminated JSON lines for its HTTP response."""

    def __init__(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        loop: asyncio.AbstractEventLoop,
        render: Callable[[Stored], bytes] | None = None,
    ) -> None:
        self.rt = rt
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.loop = loop
        self._render = render  # e.g. a meta.k8s.io Table per event, for `kubectl get -w`
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False

    def matches(self, stored: Stored) -> bool:
        obj = stored.obj
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.labels.matches(obj["metadata"].get("labels")) and self.fields.matches(obj)

    def line_for(self, event: Event) -> bytes | None:
        """The event as this watcher sees it: an object leaving the selection is DELETED, entering it ADDED."""
        if event.rt is not self.rt:
            return None
        now_in = self.matches(event.new)
        if event.type == "MODIFIED":
            was_in = event.old is not None and self.matches(event.old)
            kind = "MODIFIED" if (now_in and was_in) else "ADDED" if now_in else "DELETED" if was_in else None
        else:
            kind = event.type if now_in else None
        return event_line(kind, self.body_of(event.new)) if kind else None

    def body_of(self, stored: Stored) -> bytes:
        return self._render(stored) if self._render else stored.body

    def offer(self, line: bytes | None) -> None:
        if self.closed:
            return
        if line is None:
            self.closed = True
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, line)
        except RuntimeError:  # the loop is gone: nobody is reading any more
            self.closed = True


def event_line(kind: str, body: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + body + b"}\n"
