"""The Kubernetes REST surface: path routing, query parameters, bodies, responses, watch streaming.

Paths served (verbs GET/POST/PUT/PATCH/DELETE as the apiserver allows them):
  /api/v1/namespaces[/{name}[/status]]
  /api/v1/namespaces/{ns}/{configmaps|pods}[/{name}[/status]]      /api/v1/{configmaps|pods}  (all namespaces)
  /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}[/{name}[/status|/scale]]
  /apis/apps/v1/{deployments|statefulsets}                          (all namespaces)
  /apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{roles|rolebindings}[/{name}], .../{roles|rolebindings},
  /apis/rbac.authorization.k8s.io/v1/{clusterroles|clusterrolebindings}[/{name}], /api/v1/.../serviceaccounts
  the deprecated /api/v1/watch/... and /apis/{group}/{version}/watch/... forms of a watch
  POST /apis/authorization.k8s.io/v1/{selfsubjectaccessreviews|selfsubjectrulesreviews},
  POST /apis/authentication.k8s.io/v1/selfsubjectreviews                 (devnet.kube.reviews)
plus discovery (/api, /apis, /api/v1, /apis/{group}[/v1], /version) and /healthz, /readyz, /livez.
With an AccessControl (KubeEmulator(rbac=True)) every request is authenticated, impersonated and authorized
first. Bodies may be JSON, YAML or, for the kinds kubectl's typed clients send, protobuf (devnet.kube.protobuf).
Collection GET understands labelSelector, fieldSelector, watch=true|1, resourceVersion, timeoutSeconds;
limit, continue, allowWatchBookmarks and sendInitialEvents are accepted and ignored (lists are never paged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from devnet.kube import discovery, errors, openapi, protobuf, reviews
from devnet.kube.access import AccessControl
from devnet.kube.auth import ADMIN, User
from devnet.kube.errors import ApiError
from devnet.kube.faults import Faults
from devnet.kube.impersonation import impersonation
from devnet.kube.objects import Stored, encode
from devnet.kube.patch import apply_patch, media_type
from devnet.kube.requestinfo import watch_requested
from devnet.kube.resources import BY_GROUP_VERSION_PLURAL, NAMESPACES, PODS, WORKLOAD_TYPES, ResourceType
from devnet.kube.scale import scale_of, write_scale
from devnet.kube.selectors import FieldRequirement, FieldSelector, parse_field_selector, parse_label_selector
from devnet.kube.store import Store
from devnet.kube.tables import table_for, wants_table

log = logging.getLogger(__name__)

DEFAULT_WATCH_SECONDS = 1800  # the apiserver's --min-request-timeout
JSON = "application/json"


@dataclass(frozen=True)
class Target:
    """What a resource path names: a type, a namespace (None = all), maybe an object and a subresource."""

    rt: ResourceType
    namespace: str | None
    name: str | None = None
    subresource: str | None = None
    watch: bool = False  # a /watch/ path


def json_response(
    body: bytes | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    payload = body if isinstance(body, bytes) else encode(body)
    return web.Response(body=payload, status=status, content_type=JSON, headers=headers)


def error_response(error: ApiError) -> web.Response:
    headers = (
        {"Retry-After": str(error.retry_after_seconds)} if error.retry_after_seconds is not None else None
    )
    return json_response(error.status(), status=error.code, headers=headers)


def _in_served_group(path: str) -> bool:
    """/api/... and /apis/<served group>/...: the apiserver's group handlers answer a Status there."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        return True
    return len(parts) >= 2 and parts[0] == "apis" and discovery.api_group(parts[1]) is not None


def _page_not_found() -> web.Response:
    # Outside every served group the request falls through to Go's http.NotFound: plain text, no Status.
    return web.Response(status=404, text="404 page not found\n", content_type="text/plain", charset="utf-8")


def parse_target(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = rest[:1] == ["watch"]
    if watch:
        rest = rest[1:]

    def lookup(plural: str) -> ResourceType | None:
        return BY_GROUP_VERSION_PLURAL.get((group, version, plural))

    if len(rest) >= 3 and rest[0] == "namespaces" and (rt := lookup(rest[2])) is not None and rt.namespaced:
        if len(rest) > (4 if watch else 5):
            return None
        return Target(
            rt, rest[1], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None, watch
        )
    if 1 <= len(rest) <= (2 if watch else 3) and (rt := lookup(rest[0])) is not None:
        if rt.namespaced:
            return Target(rt, None, watch=watch) if len(rest) == 1 else None
        return Target(rt, "", rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None, watch)
    return None


def _decode_body(raw: bytes, content_type: str | None) -> Any:
    kind = media_type(content_type)
    if kind == protobuf.PROTOBUF:
        return protobuf.decode(raw)
    if "protobuf" in kind or "cbor" in kind:
        raise errors.ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: {JSON}, "
            f"application/yaml, {protobuf.PROTOBUF}",
        )
    if not raw.strip():
        raise errors.bad_request("the body of the request was empty")
    try:
        if "yaml" in kind:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None


def _int_param(query: Any, key: str) -> int | None:
    value = query.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid {key} {value!r}: must be an integer") from None


class KubeApi:
    def __init__(
        self,
        store: Store,
        faults: Faults,
        server_address: Callable[[], str],
        access: AccessControl | None = None,
    ) -> None:
        self.store = store
        self.faults = faults
        self.server_address = server_address
        self.access = access  # None: no authentication, everything allowed
        self._streams: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        try:
            user = self._user(request)
        except ApiError as refused:
            return error_response(refused)
        delay = self.faults.latency(method, path)
        if delay:
            await asyncio.sleep(delay)
        injected = self.faults.take_error(method, path)
        if injected is not None:
            return error_response(injected)
        try:
            return await self._dispatch(request, user)
        except ApiError as error:
            return error_response(error)
        except web.HTTPRequestEntityTooLarge as too_large:
            return error_response(
                ApiError(413, "RequestEntityTooLarge", f"Request entity too large: {too_large.text}")
            )
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # never a traceback on the wire, always a Status
            log.exception("kube emulator: %s %s failed", method, path)
            return error_response(errors.internal(f"{type(exc).__name__}: {exc}"))

    def _user(self, request: web.Request) -> User:
        """Who the request runs as: authenticated, impersonated and authorized with an AccessControl;
        without one (an AlwaysAllow cluster) the admin, or whoever the Impersonate-* headers name."""
        if self.access is not None:
            return self.access.check(request.method, request.path, request.query, request.headers)
        impersonated = impersonation(request.path, request.headers)
        return ADMIN if impersonated is None else impersonated.user

    async def _dispatch(self, request: web.Request, user: User) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        static = self._discovery(path)
        if static is not None:
            if request.method != "GET":
                raise errors.method_not_allowed()
            return static
        review = reviews.target(path)
        if review is not None:
            if request.method != "POST":
                raise errors.method_not_allowed()
            body = _decode_body(await request.read(), request.content_type)
            authorizer = self.access.authorizer if self.access is not None else None
            return json_response(reviews.review(*review, body, user, authorizer), status=201)
        target = parse_target(path)
        if target is None:
            if not _in_served_group(path):
                return _page_not_found()
            raise errors.no_such_resource()
        if (
            target.subresource not in (None, "status", "scale")
            or (target.subresource == "status" and not target.rt.has_status)
            or (target.subresource == "scale" and target.rt not in WORKLOAD_TYPES)
        ):
            raise errors.no_such_resource()
        if target.watch:  # parse_target leaves no room for a subresource on a /watch/ path
            if request.method != "GET":
                raise errors.method_not_allowed()
            return await self._watch(request, target)
        if target.name is None:
            return await self._collection(request, target)
        return await self._object(request, target)

    def _discovery(self, path: str) -> web.Response | None:
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return json_response(discovery.SERVER_VERSION)
        if path == "/api":
            return json_response(discovery.api_versions(self.server_address()))
        if path == "/apis":
            return json_response(discovery.api_group_list())
        if path == "/openapi/v3":
            return json_response(openapi.root_document())
        if path.startswith("/openapi/v3/"):
            gv = path.removeprefix("/openapi/v3/").split("/")
            group, version = (gv[1], gv[2]) if gv[0] == "apis" and len(gv) == 3 else ("", gv[-1])
            document = openapi.group_version_document(group, version) if gv[0] in ("api", "apis") else None
            if document is None:
                return web.Response(status=404)  # the real OpenAPI v3 handler: no body, no content type
            return json_response(document)
        parts = path.strip("/").split("/")
        if parts == ["api", "v1"]:
            doc = discovery.api_resource_list("", "v1")
        elif len(parts) in (2, 3) and parts[0] == "apis" and discovery.api_group(parts[1]) is None:
            return _page_not_found()
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(parts[1], parts[2])
        else:
            return None
        if doc is None:
            raise errors.no_such_resource()
        return json_response(doc)

    # ------------------------------------------------------------------ collections

    async def _collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, query = target.rt, request.query
        if request.method == "GET":
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), rt.plural)
            if watch_requested(query.get("watch")):
                return await self._watch(request, target)
            items, rv = self.store.list(rt, target.namespace, labels, fields)
            if wants_table(request.headers.get("Accept", "")):
                return json_response(table_for(rt, items, rv, self.store.clock))
            return json_response(self._list_body(rt, items, rv))
        if request.method == "POST":
            if target.namespace is None:
                raise errors.method_not_allowed()
            body = _decode_body(await request.read(), request.content_type)
            stored = self.store.create(rt, target.namespace, body, dry_run=_dry_run(request))
            return json_response(stored.body, status=201)
        raise errors.method_not_allowed()

    @staticmethod
    def _list_body(rt: ResourceType, items: list[Stored], rv: int) -> bytes:
        head = encode(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(rv)}}
        )
        return head[:-1] + b',"items":[' + b",".join(item.body for item in items) + b"]}"

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), target.rt.plural)
        if target.name is not None:  # /watch/.../{name}: the apiserver turns the name into a field selector
            pinned = FieldRequirement("metadata.name", "=", target.name)
            fields = FieldSelector((*fields.requirements, pinned))
        since = _int_param(query, "resourceVersion")
        timeout = _int_param(query, "timeoutSeconds")
        timeout = DEFAULT_WATCH_SECONDS if timeout is None or timeout <= 0 else timeout
        loop = asyncio.get_running_loop()
        clock = self.store.clock

        def as_table(stored: Stored) -> bytes:  # `kubectl get -w` asks for Table events
            return encode(table_for(target.rt, [stored], stored.resource_version, clock))

        render = as_table if wants_table(request.headers.get("Accept", "")) else None
        watcher = self.store.watch(target.rt, target.namespace, labels, fields, since or None, loop, render)
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            await response.prepare(request)
            deadline = loop.time() + timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):  # not wait_for, which can swallow a cancel in 3.11
                        line = await watcher.queue.get()
                except TimeoutError:
                    break
                if line is None:
                    break
                chunk = [line]
                while not watcher.queue.empty():  # send what piled up in one write
                    more = watcher.queue.get_nowait()
                    if more is None:
                        watcher.closed = True
                        break
                    chunk.append(more)
                await response.write(b"".join(chunk))
                if watcher.closed and watcher.queue.empty():
                    break
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.store.unwatch(watcher)
            if task is not None:
                self._streams.discard(task)
        return response

    # ------------------------------------------------------------------ single objects

    async def _object(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, name, sub = target.rt, target.name or "", target.subresource
        namespace = target.namespace or ""
        method = request.method
        if sub == "scale":
            return await self._scale(request, rt, namespace, name)
        if method == "GET":
            if wants_table(request.headers.get("Accept", "")):
                stored = self.store.require(rt, namespace, name)
                return json_response(table_for(rt, [stored], stored.resource_version, self.store.clock))
            return json_response(self.store.require(rt, namespace, name).body)
        if method in ("PUT", "PATCH"):
            raw = await request.read()
            if self.faults.take_conflict(rt.plural, namespace, name) and self.store.get(rt, namespace, name):
                raise errors.conflict(rt, name)
            if method == "PUT":
                body = _decode_body(raw, request.content_type)
                stored = self.store.replace(
                    rt, namespace, name, body, subresource=sub, dry_run=_dry_run(request)
                )
            else:
                content_type = request.headers.get("Content-Type")
                stored = self.store.patch(
                    rt,
                    namespace,
                    name,
                    lambda current: apply_patch(current, raw, content_type),
                    subresource=sub,
                    dry_run=_dry_run(request),
                )
            return json_response(stored.body)
        if method == "DELETE" and sub is None:
            return self._delete(rt, namespace, name, await request.read(), request)
        raise errors.method_not_allowed()

    async def _scale(self, request: web.Request, rt: ResourceType, namespace: str, name: str) -> web.Response:
        if request.method == "GET":
            return json_response(scale_of(self.store.require(rt, namespace, name)))
        if request.method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed()
        raw = await request.read()
        if self.faults.take_conflict(rt.plural, namespace, name) and self.store.get(rt, namespace, name):
            raise errors.conflict(rt, name)
        if request.method == "PUT":
            return json_response(
                write_scale(self.store, rt, namespace, name, _decode_body(raw, request.content_type))
            )
        with self.store.lock:
            current = scale_of(self.store.require(rt, namespace, name))
            patched = apply_patch(current, raw, request.headers.get("Content-Type"))
            return json_response(write_scale(self.store, rt, namespace, name, patched))

    def _delete(
        self, rt: ResourceType, namespace: str, name: str, raw: bytes, request: web.Request
    ) -> web.Response:
        preconditions: dict[str, Any] = {}
        grace: Any = request.query.get("gracePeriodSeconds")
        if raw.strip():
            options = _decode_body(raw, request.content_type)
            if isinstance(options, dict):
                preconditions = options.get("preconditions") or {}
                grace = options.get("gracePeriodSeconds", grace)
        deleted = self.store.delete(
            rt,
            namespace,
            name,
            uid=preconditions.get("uid"),
            resource_version=preconditions.get("resourceVersion"),
            dry_run=_dry_run(request),
            grace_period_seconds=_grace(grace),
        )
        if rt is PODS:
            return json_response(deleted.body)
        if rt is NAMESPACES:
            obj = deleted.copy()
            obj["metadata"]["deletionTimestamp"] = self.store.clock.rfc3339()
            obj["status"] = {"phase": "Terminating"}
            return json_response(obj)
        details: dict[str, Any] = {"name": name}
        if rt.group:
            details["group"] = rt.group
        details.update(kind=rt.plural, uid=deleted.obj["metadata"]["uid"])
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    async def close_streams(self) -> None:
        """End every open watch (the store already queued their end marker) and wait for the handlers."""
        self.store.close_watchers()
        pending = [t for t in self._streams if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=5)


def _grace(value: Any) -> int | None:
    """DeleteOptions.gracePeriodSeconds (body or query); 0 is kubectl's `--grace-period=0 --force`."""
    if value is None:
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f"gracePeriodSeconds: {value!r} is not an integer") from None
    if seconds < 0:
        raise errors.bad_request("gracePeriodSeconds must be >= 0")
    return seconds


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
