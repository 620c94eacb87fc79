"""`peersync undo`: pin again the endpoint that was in effect before a validator's last change (the registry
keeps it with that change), as an override: planned, confirmed and started as `update --endpoint` is."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from core.contracts import ChangeAsk, EndpointChangeRequest, RegistryView
from workers.cli_common import JsonFlag, call, connect, fail, leave, state
from workers.cli_ops import registry_rows
from workers.cli_output import OutputOption, chosen
from workers.cli_update import (
    ApprovalFlag,
    DryRunFlag,
    ValidatorOption,
    WaitFlag,
    YesFlag,
    confirm,
    fetch_plan,
    row_of,
    show_plan,
    start_change,
    validate_request,
)
from workers.settings import Settings


def undo(
    ctx: typer.Context,
    validator: ValidatorOption,
    wait: WaitFlag = False,
    dry_run: DryRunFlag = False,
    require_approval: ApprovalFlag = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    output: OutputOption = None,
) -> None:
    """Pin the endpoint in effect before the validator's last change (an override, until the chain moves)."""
    settings = state(ctx).settings()
    fmt = chosen(output, as_json)
    row = call(_registry_row(settings, validator))
    if row.change is None or row.previous is None:
        fail(f"nothing to undo: the registry knows no endpoint in effect before {row.moniker}'s last change")
    if row.previous == row.effective:
        fail(
            f"nothing to undo: {row.previous} is in effect for {row.moniker} already (last change {row.change})"
        )
    try:
        request = EndpointChangeRequest(validator=row.operator_address, endpoint=row.previous, override=True)
    except ValidationError as exc:
        fail(f"invalid input: {exc.errors()[0]['msg']}")
    if dry_run:
        show_plan(call(fetch_plan(settings, request)), fmt, dry_run=True)
        leave()
    call(
        validate_request(settings, request)
    )  # the endpoint passes this CLI's address policy, as the worker's must
    confirm(settings, request, yes, fmt, f"undo of {row.change}")
    ask = ChangeAsk(
        validator=row.operator_address,
        endpoint=row.previous,
        override=True,
        require_approval=require_approval,
    )
    start_change(settings, ask, wait, fmt)


async def _registry_row(settings: Settings, validator: str) -> RegistryView:
    row = row_of(await registry_rows(await connect(settings), settings), validator)
    if row is None:
        fail(f"no validator {validator!r} in the registry of cluster {settings.cluster_id}")
    return row
