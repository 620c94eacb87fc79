"""`peersync watch`: the chain watcher, with /healthz and /metrics on PEERSYNC_METRICS_ADDRESS."""

from __future__ import annotations

import asyncio
import signal

import typer
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workers.cli_common import serve, state
from workers.settings import Settings
from workers.telemetry import configure_logging, process_runtime
from workers.watcher import Watcher
from workers.worker import connect_checked


def _health_app(watcher: Watcher) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        # Unhealthy while disconnected: an orchestrator then sees the chain is unreachable from here.
        return web.json_response({"connected": watcher.connected}, status=200 if watcher.connected else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def run_watch(settings: Settings) -> None:
    # The watcher serves its own /metrics (prometheus_client) on PEERSYNC_METRICS_ADDRESS; the Temporal SDK's
    # exporter must not also bind that address (the second bind failed and the watcher died at start).
    client = await connect_checked(settings, process_runtime(settings, serve_metrics=False))
    watcher = Watcher(settings, client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = None
    if settings.metrics_address:
        host, _, port = settings.metrics_address.rpartition(":")
        # No access log: an orchestrator's probe of /healthz every few seconds would flood the log at INFO.
        runner = web.AppRunner(_health_app(watcher), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    try:
        await watcher.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()


def watch(ctx: typer.Context) -> None:
    """Follow the chain's websocket; start an endpoint change the moment a validator edits its endpoint."""
    settings = state(ctx).settings()
    configure_logging(settings)
    serve("watch", run_watch(settings))
