"""`peersync worker`."""

from __future__ import annotations

from typing import Annotated

import typer

from workers.cli_common import serve, state
from workers.telemetry import configure_logging
from workers.worker import run_worker


def worker(
    ctx: typer.Context,
    schedule: Annotated[
        bool,
        typer.Option(help="Create or update the reconcile schedule at start (PEERSYNC_RECONCILE_EVERY)."),
    ] = True,
) -> None:
    """Run the Temporal worker of this cluster (task queue peersync-<PEERSYNC_CLUSTER_ID>)."""
    settings = state(ctx).settings()
    configure_logging(settings)
    serve("worker", run_worker(settings, schedule=schedule))
