"""`peersync worker`."""

from __future__ import annotations

import asyncio

import typer

from workers.cli_common import state
from workers.worker import run_worker


def worker(ctx: typer.Context) -> None:
    """Run the Temporal worker of this cluster (task queue peersync-<PEERSYNC_CLUSTER_ID>)."""
    settings = state(ctx).settings()
    asyncio.run(run_worker(settings))
