"""`KubeEmulator`: the Kubernetes API emulator the devnet and the tests run (see DESIGN.md, "Kube emulator").

    emulator = KubeEmulator(step_seconds=0.05)
    await emulator.start()
    emulator.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
    emulator.write_kubeconfig(Path("kubeconfig"))           # for kubectl / kubernetes.config
    emulator.inject_fault({"type": "conflict", "count": 2})  # or POST /devnet/faults
    await emulator.stop()

With `KubeEmulator(rbac=True)` requests are authenticated and authorized like a real apiserver's: no
Authorization header = the cluster admin; `issue_token(namespace, service_account)` gives a bearer token for a
ServiceAccount, checked against the Roles/ClusterRoles/bindings in the store at request time:

    emulator.apply(service_account, role, binding)...
    token = emulator.issue_token("peersync", "peersync-worker")
    emulator.write_kubeconfig(Path("worker-kubeconfig"), token=token)

kubectl sends a kubeconfig's token only to an https server: `KubeEmulator(tls=True)` serves HTTPS with a
self-signed certificate, which the kubeconfigs it writes carry as their certificate authority.

The in-process methods (apply, get, list, delete, tick, settle, advance_clock, faults) are synchronous and
thread-safe, so a test may call them from its own thread while the server runs on a background loop
(devnet.loop_thread.serve_in_thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from devnet.kube import resources
from devnet.kube.access import AccessControl
from devnet.kube.admin import AdminApi
from devnet.kube.api import KubeApi
from devnet.kube.auth import Tokens
from devnet.kube.clock import Clock
from devnet.kube.controller import Controllers
from devnet.kube.faults import Faults
from devnet.kube.kubeconfig import write_kubeconfig
from devnet.kube.rbac import Authorizer
from devnet.kube.resources import SERVICEACCOUNTS
from devnet.kube.selectors import parse_label_selector
from devnet.kube.store import Store
from devnet.kube.tls import Certificate, self_signed

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 3 * 1024 * 1024  # the apiserver's request size limit


class KubeEmulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        step_seconds: float = 0.2,
        *,
        seed: int = 0,
        history_size: int = 50_000,
        rbac: bool = False,
        tls: bool = False,
    ) -> None:
        if step_seconds < 0:
            raise ValueError("step_seconds must be >= 0")
        self.host = host
        self.port = port
        self.clock = Clock()
        self.store = Store(self.clock, history_size=history_size, seed=seed)
        self.faults = Faults()
        self.controllers = Controllers(self.store, self.clock, self.faults)
        self._step_seconds = float(step_seconds)
        self.tokens = Tokens(self._service_account_uid)
        # Without rbac there is no access control at all: any Authorization header is ignored, as before.
        self.access = AccessControl(self.tokens, Authorizer(self.store)) if rbac else None
        self._api = KubeApi(
            self.store, self.faults, lambda: f"{self._client_host}:{self.port}", access=self.access
        )
        self._admin = AdminApi(self)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.requests_served = 0
        self.certificate: Certificate | None = (
            self_signed([self._client_host, "localhost", "127.0.0.1"]) if tls else None
        )

    # ------------------------------------------------------------------ lifecycle

    async def _counted(self, request: web.Request) -> web.StreamResponse:
        self.requests_served += 1  # Kubernetes API requests only (benchmarks count them); admin is apart
        return await self._api.handle(request)

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/devnet/{tail:.*}", self._admin.handle)
        app.router.add_route("*", "/{tail:.*}", self._counted)
        # handler_cancellation: a watch whose client went away is cancelled instead of lingering to its timeout.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        ssl_context = self.certificate.server_context() if self.certificate is not None else None
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ticker = asyncio.create_task(self._run_controllers(), name="kube-emulator-controllers")
        log.info("kube emulator listening on %s", self.url)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self._api.close_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._loop = None

    async def _run_controllers(self) -> None:
        assert self._wake is not None
        while True:
            step = self._step_seconds
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races the event.
                async with asyncio.timeout(step if step > 0 else None):
                    await self._wake.wait()
                self._wake.clear()  # step_seconds changed: wait again with the new value
                continue
            except TimeoutError:
                pass
            try:
                self.tick()
            except Exception:  # a controller bug must not stop the cluster
                log.exception("kube emulator: controller tick failed")

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host

    @property
    def url(self) -> str:
        scheme = "https" if self.certificate is not None else "http"
        return f"{scheme}://{self._client_host}:{self.port}"

    @property
    def step_seconds(self) -> float:
        return self._step_seconds

    @step_seconds.setter
    def step_seconds(self, value: float) -> None:
        if value < 0:
            raise ValueError("step_seconds must be >= 0")
        self._step_seconds = float(value)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def write_kubeconfig(
        self, path: Path, context: str = "peersync-devnet", *, token: str | None = None
    ) -> Path:
        """A kubeconfig for this emulator: the cluster admin, or whoever `token` (from issue_token) is."""
        ca = self.certificate.cert_pem if self.certificate is not None else None
        if token is None and ca is not None:
            token = self.tokens.admin_token  # over https kubectl prompts for a password without a credential
        return write_kubeconfig(path, self.url, context, token, certificate_authority=ca)

    # ------------------------------------------------------------------ authentication / authorization

    @property
    def rbac(self) -> bool:
        return self.access is not None

    def _service_account_uid(self, namespace: str, name: str) -> str | None:
        stored = self.store.get(SERVICEACCOUNTS, namespace, name)
        return None if stored is None else str(stored.obj["metadata"]["uid"])

    def issue_token(self, namespace: str, service_account: str) -> str:
        """A bearer token authenticating as system:serviceaccount:<namespace>:<service_account>; the
        ServiceAccount must exist (ApiError 404 otherwise), and deleting it invalidates the token."""
        return self.tokens.issue(namespace, service_account)

    def revoke_token(self, token: str) -> bool:
        return self.tokens.revoke(token)

    @property
    def requests_denied(self) -> int:
        """Requests answered 401 or 403 by the access checks (always 0 without rbac)."""
        return self.access.denied if self.access is not None else 0

    def denials(self) -> list[dict[str, Any]]:
        """The latest denied requests, oldest first: user, method, path, verb, group, resource, subresource,
        namespace, name, code and message (401s carry only user None, method, path, code, message)."""
        return self.access.denials() if self.access is not None else []

    # ------------------------------------------------------------------ in-process API (thread-safe)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj`, or replace it unconditionally if it exists; same defaulting, validation, generation and
        resourceVersion rules as the HTTP API (an ApiError says why not). Namespaces must exist first."""
        rt = resources.resolve(str(obj.get("kind", "")))
        return self.store.apply(rt, obj).copy()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        stored = self.store.get(resources.resolve(kind), namespace, name)
        return stored.copy() if stored else None

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        items, _ = self.store.list(resources.resolve(kind), namespace, parse_label_selector(label_selector))
        return [item.copy() for item in items]

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        rt = resources.resolve(kind)
        with self.store.lock:
            if self.store.get(rt, namespace, name) is None:
                return False
            self.store.delete(rt, namespace, name)
            return True

    def tick(self) -> int:
        """Advance every controller one deterministic step; returns the number of writes it made."""
        return self.controllers.tick()

    def settle(self, max_ticks: int = 1000) -> int:
        """Tick until a tick changes nothing (stuck rollouts count as settled); returns the ticks taken."""
        for ticks in range(1, max_ticks + 1):
            if self.tick() == 0:
                return ticks
        return max_ticks

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward, e.g. past a Deployment's progressDeadlineSeconds."""
        self.clock.advance(seconds)

    @property
    def clock_offset(self) -> float:
        return self.clock.offset

    @property
    def resource_version(self) -> str:
        return str(self.store.resource_version)

    def inject_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add a fault (JSON bodies in devnet.kube.faults; ValueError if malformed); returns it with its id."""
        return self.faults.add(spec).to_json()

    def remove_fault(self, fault_id: str) -> bool:
        return self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        self.faults.clear()

    def active_faults(self) -> list[dict[str, Any]]:
        return self.faults.active()
