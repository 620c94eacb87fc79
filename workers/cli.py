"""The `peersync` command line. Each command lives in its own module; this file only wires them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workers import (
    cli_control,
    cli_devnet,
    cli_hold,
    cli_ops,
    cli_reconcile,
    cli_status,
    cli_undo,
    cli_update,
    cli_watch,
    cli_worker,
)
from workers.cli_common import AppState, fail

app = typer.Typer(
    name="peersync",
    help="Keep ICS consumer-chain peer lists correct when validators move their P2P endpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML file of settings (environment variables win over it)."),
    ] = None,
) -> None:
    ctx.obj = AppState(config_file=config)


app.command("devnet")(cli_devnet.devnet)
app.command("worker")(cli_worker.worker)
app.command("watch")(cli_watch.watch)
for _command in (
    cli_update.update,
    cli_ops.sync,
    cli_control.pause,
    cli_control.resume,
    cli_control.cancel,
    cli_control.approve,
):
    app.command(_command.__name__)(_command)
app.command("undo")(cli_undo.undo)
app.command("status")(cli_status.status)
app.command("registry")(cli_ops.registry)
app.command("reconcile")(cli_reconcile.reconcile)
app.add_typer(cli_reconcile.schedule_app, name="schedule")
app.add_typer(cli_hold.hold_app, name="hold")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted", code=130)


if __name__ == "__main__":
    main()
