"""The object store: one resourceVersion counter, create/update/delete with the apiserver's bookkeeping,
and watch fan-out.

Rules implemented here (kubernetes.md §3, §6(iii)):
- resourceVersion is one global counter, served as a string, bumped by every real write (deletes too);
- a write that changes nothing keeps resourceVersion and generation and emits no watch event;
- PUT with a stale resourceVersion is a 409 Conflict, PUT without one is unconditional;
- generation is 1 on create and +1 on a spec change (a Deployment also on a metadata.annotations change);
  status writes never bump it; main-resource writes keep the stored .status and `/status` writes change
  only .status.

Thread model: every mutation holds one re-entrant lock, so the in-process API (seeding, tick) may be used
from any thread while the HTTP server runs on its event loop. Watchers receive their events through
`loop.call_soon_threadsafe`, always, which keeps events in resourceVersion order whichever thread wrote.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from devnet.kube import errors
from devnet.kube.clock import Clock
from devnet.kube.defaults import apply_defaults, initial_status, normalize_status
from devnet.kube.objects import Stored, encode, ordered
from devnet.kube.resources import ALL_TYPES, NAMESPACES, ResourceType
from devnet.kube.selectors import FieldSelector, LabelSelector
from devnet.kube.validation import check_shape, check_update, check_valid, precondition_uid
from devnet.kube.watch import Event, Watcher, event_line

# Fields only the server sets; a client's values are ignored (or checked, for uid).
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
)


Listener = Callable[[Event], None]


class Store:
    def __init__(self, clock: Clock, history_size: int = 50_000, seed: int = 0) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._rv = 1000  # arbitrary start, so a "0" or "1" from a client never looks current
        self._objects: dict[str, dict[str, dict[str, Stored]]] = {rt.plural: {} for rt in ALL_TYPES}
        self._history: deque[Event] = deque(maxlen=history_size)
        self._history_floor = self._rv  # events at or below this RV are no longer replayable
        self._watchers: set[Watcher] = set()
        self._listeners: list[Listener] = []
        self._graceful: dict[str, Callable[[Stored, int | None], Stored]] = {}
        self._random = random.Random(seed)

    # ------------------------------------------------------------------ reads

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> Stored | None:
        return self._objects[rt.plural].get(namespace if rt.namespaced else "", {}).get(name)

    def require(self, rt: ResourceType, namespace: str, name: str) -> Stored:
        stored = self.get(rt, namespace, name)
        if stored is None:
            raise errors.not_found(rt, name)
        return stored

    def in_namespace(self, rt: ResourceType, namespace: str) -> Iterable[Stored]:
        return list(self._objects[rt.plural].get(namespace, {}).values())

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> tuple[list[Stored], int]:
        """Matching objects sorted by namespace then name (etcd key order), and the list's resourceVersion."""
        with self.lock:
            by_namespace = self._objects[rt.plural]
            scope = namespace if rt.namespaced else ""
            if scope is not None:
                buckets = [(scope, by_namespace.get(scope, {}))]
            else:
                buckets = sorted(by_namespace.items())
            pinned = fields.exact("metadata.name") if fields else None
            result: list[Stored] = []
            for _, bucket in buckets:
                if pinned is not None:
                    candidates = [bucket[pinned]] if pinned in bucket else []
                else:
                    candidates = [bucket[name] for name in sorted(bucket)]
                for stored in candidates:
                    meta = stored.obj["metadata"]
                    if labels and not labels.matches(meta.get("labels")):
                        continue
                    if fields and not fields.matches(stored.obj):
                        continue
                    result.append(stored)
            return result, self._rv

    # ------------------------------------------------------------------ writes

    def _new_uid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def random_suffix(self, length: int = 5) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's, which avoids vowels and look-alikes
        return "".join(self._random.choice(alphabet) for _ in range(length))

    def _emit(self, event: Event) -> None:
        if len(self._history) == self._history.maxlen:
            self._history_floor = self._history[0].resource_version
        self._history.append(event)
        for listener in self._listeners:
            listener(event)
        for watcher in list(self._watchers):
            line = watcher.line_for(event)
            if line is not None:
                watcher.offer(line)

    def _commit(self, rt: ResourceType, obj: dict[str, Any], old: Stored | None, kind: str) -> Stored:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        stored = Stored(obj, encode(obj))
        bucket = self._objects[rt.plural].setdefault(stored.namespace, {})
        if kind == "DELETED":
            bucket.pop(stored.name, None)
            if not bucket:
                del self._objects[rt.plural][stored.namespace]
        else:
            bucket[stored.name] = stored
        self._emit(Event(kind, rt, stored, old))
        return stored

    def _scope(self, rt: ResourceType, namespace: str, obj: dict[str, Any]) -> None:
        metadata = obj["metadata"]
        if not rt.namespaced:
            metadata.pop("namespace", None)
            return
        body_namespace = metadata.get("namespace")
        if body_namespace and body_namespace != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        metadata["namespace"] = namespace

    def create(self, rt: ResourceType, namespace: str, body: Any, *, dry_run: bool = False) -> Stored:
        check_shape(rt, body)
        obj: dict[str, Any] = body
        metadata = obj.setdefault("metadata", {})
        if metadata.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        with self.lock:
            self._scope(rt, namespace, obj)
            if rt.namespaced and self.get(NAMESPACES, "", namespace) is None:
                raise errors.namespace_not_found(namespace)
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + self.random_suffix()
            for key in _SERVER_METADATA:
                metadata.pop(key, None)
            apply_defaults(rt, obj)
            check_valid(rt, obj)
            if self.get(rt, namespace, metadata["name"]) is not None:
                raise errors.already_exists(rt, metadata["name"])
            metadata["uid"] = self._new_uid()
            metadata["creationTimestamp"] = self.clock.rfc3339()
            if rt.tracks_generation:
                metadata["generation"] = 1
            status = initial_status(rt)
            obj.pop("status", None)
            if status is not None:
                obj["status"] = status
            obj = ordered(rt, obj)
            if dry_run:
                obj["metadata"]["resourceVersion"] = ""
                return Stored(obj, encode(obj))
            return self._commit(rt, obj, None, "ADDED")

    def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Stored:
        """PUT semantics: a resourceVersion in the body is a precondition; none means unconditional."""
        check_shape(rt, body)
        new: dict[str, Any] = body
        metadata = new.setdefault("metadata", {})
        if metadata.get("name") and metadata["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
            )
        with self.lock:
            old = self.require(rt, namespace, name)
            expected = metadata.get("resourceVersion")
            if expected and expected != old.obj["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name)
            metadata["name"] = name
            self._scope(rt, namespace, new)
            precondition_uid(rt, metadata.get("uid"), old.obj["metadata"]["uid"])
            if subresource == "status":
                updated = old.copy()
                if "status" in new:
                    updated["status"] = new["status"]
            else:
                updated = self._prepare_main_update(rt, new, old.obj)
            return self._write(rt, updated, old, dry_run)

    def _prepare_main_update(
        self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any]
    ) -> dict[str, Any]:
        metadata, old_meta = new["metadata"], old["metadata"]
        for key in _SERVER_METADATA:
            metadata.pop(key, None)
            if key in old_meta:
                metadata[key] = old_meta[key]
        apply_defaults(rt, new)
        check_valid(rt, new)
        check_update(rt, new, old)
        if rt.has_status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = old["status"]
        if rt.tracks_generation:
            spec_changed = new.get("spec") != old.get("spec")
            annotations_changed = rt.annotations_bump_generation and (
                (metadata.get("annotations") or {}) != (old_meta.get("annotations") or {})
            )
            if spec_changed or annotations_changed:
                metadata["generation"] = int(old_meta.get("generation", 0)) + 1
        return new

    def _write(self, rt: ResourceType, updated: dict[str, Any], old: Stored, dry_run: bool) -> Stored:
        updated["metadata"]["resourceVersion"] = old.obj["metadata"]["resourceVersion"]
        normalize_status(rt, updated)
        updated = ordered(rt, updated)
        if updated == old.obj or dry_run:
            # The apiserver does not write an object that did not change: same RV, no watch event.
            return old if updated == old.obj else Stored(updated, encode(updated))
        return self._commit(rt, updated, old, "MODIFIED")

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        apply: Callable[[dict[str, Any]], Any],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Stored:
        """Read-modify-write under the lock; a resourceVersion the patch put in the result is a precondition."""
        with self.lock:
            old = self.require(rt, namespace, name)
            patched = apply(old.copy())
            check_shape(rt, patched)
            metadata = patched.setdefault("metadata", {})
            if metadata.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})"
                )
            if rt.namespaced and metadata.get("namespace", namespace) != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if metadata.get("uid", old.obj["metadata"]["uid"]) != old.obj["metadata"]["uid"]:
                raise errors.invalid(
                    rt,
                    name,
                    [
                        (
                            "metadata.uid",
                            "FieldValueInvalid",
                            f'Invalid value: "{metadata.get("uid")}": field is immutable',
                        )
                    ],
                )
            return self.replace(rt, namespace, name, patched, subresource=subresource, dry_run=dry_run)

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
    ) -> Stored:
        """Delete at once (finalizers are not emulated); a namespace takes its contents along. A type with a
        graceful-deletion hook (pods: the kubelet in devnet.kube.controller) is handed to it instead, unless
        `grace_period_seconds` is 0 (a forced delete)."""
        with self.lock:
            old = self.require(rt, namespace, name)
            meta = old.obj["metadata"]
            if uid and uid != meta["uid"]:
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}",
                )
            if resource_version and resource_version != meta["resourceVersion"]:
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{resource_version}, ResourceVersion in object meta: {meta['resourceVersion']}",
                )
            if dry_run:
                return old
            graceful = self._graceful.get(rt.plural)
            if graceful is not None and grace_period_seconds != 0:
                return graceful(old, grace_period_seconds)
            if rt is NAMESPACES:
                for contained in ALL_TYPES:
                    if contained.namespaced:
                        for stored in list(self._objects[contained.plural].get(name, {}).values()):
                            self._commit(contained, stored.copy(), stored, "DELETED")
            return self._commit(rt, old.copy(), old, "DELETED")

    def apply(self, rt: ResourceType, obj: dict[str, Any]) -> Stored:
        """Create, or replace unconditionally: the in-process seeding path, with the same rules as HTTP."""
        body = json.loads(encode(obj))
        metadata = body.setdefault("metadata", {})
        metadata.pop("resourceVersion", None)
        namespace = metadata.get("namespace", "default") if rt.namespaced else ""
        with self.lock:
            if metadata.get("name") and self.get(rt, namespace, metadata["name"]) is not None:
                return self.replace(rt, namespace, metadata["name"], body)
            return self.create(rt, namespace, body)

    def write_status(
        self,
        rt: ResourceType,
        stored: Stored,
        status: dict[str, Any],
        annotations: dict[str, str] | None = None,
    ) -> Stored:
        """The controllers' status write. Like the Deployment status strategy, it may also set annotations."""
        with self.lock:
            current = self.get(rt, stored.namespace, stored.name)
            if current is None or current.obj["metadata"]["uid"] != stored.obj["metadata"]["uid"]:
                return stored
            updated = current.copy()
            updated["status"] = status
            if annotations:
                updated["metadata"].setdefault("annotations", {}).update(annotations)
            return self._write(rt, updated, current, dry_run=False)

    def write_metadata(self, rt: ResourceType, stored: Stored, fields: dict[str, Any]) -> Stored:
        """A server-side metadata write (e.g. deletionTimestamp when a graceful deletion starts)."""
        with self.lock:
            current = self.require(rt, stored.namespace, stored.name)
            updated = current.copy()
            updated["metadata"].update(fields)
            return self._write(rt, updated, current, dry_run=False)

    def set_graceful_deletion(self, rt: ResourceType, hook: Callable[[Stored, int | None], Stored]) -> None:
        """Route deletes of `rt` through `hook(object, grace_period_seconds)`, which starts a graceful one."""
        self._graceful[rt.plural] = hook

    # ------------------------------------------------------------------ watch

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        since: int | None,
        loop: asyncio.AbstractEventLoop,
        render: Callable[[Stored], bytes] | None = None,
    ) -> Watcher:
        """Register a watcher and queue its first lines: the current state as ADDED (no RV, or "0"), or the
        history after `since`; an RV older than the kept history gets a 410 ERROR event and the watch ends."""
        watcher = Watcher(rt, namespace, labels, fields, loop, render)
        with self.lock:
            if since is None:
                items, _ = self.list(rt, namespace, labels, fields)
                for stored in items:
                    watcher.offer(event_line("ADDED", watcher.body_of(stored)))
            elif since < self._history_floor:
                error = errors.expired(since, self._history_floor + 1)
                watcher.offer(event_line("ERROR", encode(error.status())))
                watcher.offer(None)
                return watcher
            else:
                newer: list[Event] = []
                for event in reversed(self._history):  # usually only the last few events are newer
                    if event.resource_version <= since:
                        break
                    newer.append(event)
                for event in reversed(newer):
                    line = watcher.line_for(event)
                    if line is not None:
                        watcher.offer(line)
            self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            self._watchers.discard(watcher)

    def close_watchers(self) -> None:
        with self.lock:
            for watcher in list(self._watchers):
                watcher.offer(None)
            self._watchers.clear()

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)
