"""`peersync hold`: keep a validator's endpoint in effect (a move the operator does not want applied yet),
and `peersync hold release`. A cancelled chain-driven change places the same hold by itself. Each refusal is
one line on stderr and a non-zero exit."""

from __future__ import annotations

from typing import Annotated

import typer
from temporalio.client import WorkflowUpdateFailedError

from core.contracts import HoldAsk, RegistryView
from core.ids import registry_id
from workers.cli_common import call, connect, fail, leave, require_worker, state
from workflows.failures import error_cause
from workflows.registry import RegistryWorkflow

hold_app = typer.Typer(
    help="Hold a validator's endpoint in effect until the chain moves again (or release the hold).",
    invoke_without_command=True,
    no_args_is_help=False,
)
Validator = Annotated[str, typer.Option(help="Operator address or moniker.")]


def _said(view: RegistryView) -> str:
    if view.hold is None:
        return f"{view.moniker}: no hold; in effect: {view.effective or '-'}"
    return (
        f"{view.moniker}: held at {view.hold.endpoint} (chain height {view.hold.height}): {view.hold.reason}; "
        f"kept until the chain moves again or `peersync hold release --validator {view.moniker}`"
    )


async def _ask(ctx: typer.Context, update: object, ask: HoldAsk) -> RegistryView:
    settings = state(ctx).settings()
    client = await connect(settings)
    await require_worker(client, settings)  # the registry's update waits for a worker
    try:
        return await client.get_workflow_handle(registry_id(settings.cluster_id)).execute_update(update, ask)  # type: ignore[arg-type]
    except WorkflowUpdateFailedError as exc:
        fail(f"refused: {error_cause(exc)}")


@hold_app.callback()
def hold(
    ctx: typer.Context,
    validator: Annotated[str | None, typer.Option(help="Operator address or moniker.")] = None,
    reason: Annotated[str, typer.Option(help="Why; shown in `peersync registry`.")] = "held by the operator",
) -> None:
    """Keep VALIDATOR's endpoint in effect now: reconcile and refreshes do not move it until the chain
    publishes a newer endpoint or the hold is released."""
    if ctx.invoked_subcommand is not None:
        return  # `hold release`
    if validator is None:
        fail("--validator is required")
    view = call(_ask(ctx, RegistryWorkflow.place_hold, HoldAsk(validator=validator, reason=reason)))
    print(_said(view))
    leave()


@hold_app.command("release")
def release(ctx: typer.Context, validator: Validator) -> None:
    """End VALIDATOR's hold; a change to the endpoint then in effect starts at the next refresh."""
    view = call(_ask(ctx, RegistryWorkflow.release_hold, HoldAsk(validator=validator)))
    print(f"{view.moniker}: hold released; in effect: {view.effective or '-'}")
    leave()
