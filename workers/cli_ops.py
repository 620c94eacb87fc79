"""Operator commands on the cluster's standing workflows: registry and sync. Each refusal is one line on
stderr and a non-zero exit."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from kubernetes.client.exceptions import ApiException
from rich.table import Table
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.kube_ops import Kube, ManagedNamespace, api_client
from activities.temporal_calls import sync_now
from core.contracts import (
    NEEDS_APPROVAL,
    ConsumerRef,
    RegistryView,
    SyncRequest,
    SyncResult,
)
from core.ids import registry_id
from workers.cli_common import (
    KUBE_UNREACHABLE,
    JsonFlag,
    NoAnswer,
    ask,
    call,
    connect,
    console,
    fail,
    kube_failure,
    leave,
    require_worker,
    state,
)
from workers.cli_output import Output, OutputOption, chosen, is_data, print_data, print_model, print_table
from workers.result_view import sync_result_table
from workers.settings import Settings
from workers.views import shown_sync_result
from workflows.registry import RegistryWorkflow


def registry(ctx: typer.Context, as_json: JsonFlag = False, output: OutputOption = None) -> None:
    """The endpoint registry of this cluster: one row per validator."""
    fmt = chosen(output, as_json)
    settings = state(ctx).settings()

    async def go() -> list[RegistryView]:
        return await registry_rows(await connect(settings), settings)

    rows = call(go())
    if fmt in (Output.JSON, Output.YAML):
        print_data([r.model_dump(mode="json") for r in rows], fmt)
        leave()
    wide = fmt == Output.WIDE  # adds the change that may act for each validator (the id approve/cancel take)
    table = Table(title=f"registry of cluster {settings.cluster_id}")
    columns = ["moniker", "operator address", "endpoint", "status", "in effect", "height"]
    # Node ids proved at the published endpoints (namespaces with peersync.io/node-ids: discovered).
    proved = any(r.discovered for r in rows)
    extra = (["node ids proved"] if proved else []) + (["change"] if wide else [])
    for col in [*columns, *extra]:
        table.add_column(col, overflow="fold")
    for r in rows:
        status = (
            r.status.value
            + (f": {r.reason}" if r.reason else "")
            + (" (moniker collision)" if r.collision else "")
        )
        if r.hold is not None:  # an operator's hold: who, why, when
            status = f"held: {r.hold.reason} (by {r.hold.by} at {r.hold.at}; chain: {status})"
        effect = (r.effective or "-") + (" (override)" if r.override else " (held)" if r.hold else "")
        cells = [r.moniker, r.operator_address, r.endpoint or "-", status, effect, str(r.height)]
        ids = [
            f"{chain}: {p.node_id or 'none: ' + (p.reason or '?')} (at {p.endpoint})"
            for chain, p in sorted(r.discovered.items())
        ]
        cells += ["\n".join(ids) or "-"] if proved else []
        table.add_row(*cells, *([r.change or "-"] if wide else []))
    print_table(table, fmt)
    leave()


async def registry_rows(client: Client, settings: Settings) -> list[RegistryView]:
    """The registry's table (its query: a worker must answer it). Refused at once when there is no
    registry, or no worker to answer (rather than a Temporal timeout half a minute later)."""
    handle = client.get_workflow_handle(registry_id(settings.cluster_id))
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            fail(
                f"no registry for cluster {settings.cluster_id} yet: has a 'peersync worker' for it ever run?"
            )
        raise
    try:
        rows: list[RegistryView] = await ask(client, handle, desc.task_queue, RegistryWorkflow.table)
    except NoAnswer as exc:
        fail(str(exc))
    return rows


def sync(
    ctx: typer.Context,
    consumer: Annotated[str, typer.Option(help="Consumer chain id (or its namespace) to sync now.")],
    approve: Annotated[
        bool, typer.Option(help="Approve a restart when PEERSYNC_REQUIRE_APPROVAL is on.")
    ] = False,
    require_approval: Annotated[
        bool,
        typer.Option(
            help="Write the peers but restart only with approval (sync again with --approve), whatever "
            "PEERSYNC_REQUIRE_APPROVAL."
        ),
    ] = False,
    as_json: JsonFlag = False,
    output: OutputOption = None,
) -> None:
    """Recompute one consumer's peers from the chain and apply them (rollout only if they changed); waits
    and ends with the result table."""
    settings = state(ctx).settings()
    fmt = chosen(output, as_json)
    if approve and require_approval:
        fail("--approve and --require-approval exclude each other")
    found = [ns for ns in _managed(settings) if consumer in (ns.chain_id, ns.name)]
    if len(found) != 1:
        fail(f"no namespace labelled peersync.io/cluster={settings.cluster_id} runs consumer {consumer!r}")
    ns = found[0]
    ref = ConsumerRef(
        cluster_id=settings.cluster_id, namespace=ns.name, chain_id=ns.chain_id, consumer_id=ns.consumer_id
    )

    async def go() -> SyncResult:
        client = await connect(settings)
        await require_worker(client, settings)  # else the update-with-start waits forever
        request = SyncRequest(
            requested_by="cli", reason="peersync sync", approved=approve, ask_approval=require_approval
        )
        return await sync_now(client, settings.activity_config(), ref, request)

    result = shown_sync_result(call(go()))
    if is_data(fmt):
        print_model(result, fmt)
    else:
        console.print(sync_result_table(result))
    if result.error:
        fail(f"the sync of {ns.name} failed: {result.error}")
    if result.rollout == NEEDS_APPROVAL:
        print(f"approve the restart: peersync sync --consumer {ns.chain_id} --approve", file=sys.stderr)
    leave()


def _managed(settings: Settings) -> list[ManagedNamespace]:
    try:
        managed, _ = Kube(api_client(settings.kubeconfig), settings.cluster_id).managed_namespaces()
    except (ApiException, *KUBE_UNREACHABLE) as exc:
        kube_failure(exc, settings)
    return managed
