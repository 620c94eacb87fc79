"""`peersync status` without an id: the recent endpoint changes of this cluster, filtered like `kubectl get`
(`--phase`, `--validator`), with monikers and old -> new, as a table narrow enough for 80 columns (short
ids; the full ones in `-o wide`), or every field as JSON/YAML."""

from __future__ import annotations

import sys

from pydantic import BaseModel, Field, ValidationError
from rich.table import Table
from temporalio.client import WorkflowExecution

from activities.chain_rest import ChainError, ChainRest
from activities.chain_view import validator_records
from core.contracts import Phase, ValidatorRecord
from core.policy import EndpointPolicy
from core.validator_names import UnknownValidatorError, resolve_validator
from workers.cli_common import CHANGE_LIST, connect, fail, short_change_id
from workers.settings import Settings
from workflows.endpoint_change import INDEXED_PHASES
from workflows.search_attributes import PHASE, VALIDATOR

# Phases a change does not index (PeersyncPhase): it lists without one (validating, discovering) or with
# the phase before (approved), so these filter on what the list shows rather than on the index.
UNINDEXED = frozenset({Phase.VALIDATING, Phase.DISCOVERING})


class WorkflowRow(BaseModel):
    workflow_id: str
    status: str = Field(description="Temporal's: RUNNING, COMPLETED, ...")
    phase: str | None = Field(description="as indexed (PeersyncPhase); None: validating or discovering")
    validator: str | None = Field(description="operator address (PeersyncValidator)")
    started: str
    short_id: str = Field(description="a unique prefix of it that every command taking an id accepts")
    moniker: str | None = Field(None, description="the validator's moniker on the chain (display only)")
    previous: str | None = Field(None, description="the endpoint in effect before the change, when recorded")
    endpoint: str | None = Field(None, description="the endpoint it moves to; None: the chain's")


async def recent_changes(
    settings: Settings, phase: Phase | None, validator: str | None, limit: int
) -> list[WorkflowRow]:
    """The newest `limit` changes of the cluster that pass the filters, newest first."""
    if phase is not None and phase not in UNINDEXED and phase not in {*INDEXED_PHASES, Phase.PROBING}:
        indexed = sorted(p.value for p in {*INDEXED_PHASES, Phase.PROBING, *UNINDEXED})
        fail(f"--phase {phase.value}: changes are not listed by it (one of: {', '.join(indexed)})")
    records = await _records(settings)
    monikers = {r.operator_address: r.moniker for r in records or []}
    query = f"{CHANGE_LIST} AND PeersyncCluster = '{settings.cluster_id}'"
    if validator is not None:
        query += f" AND PeersyncValidator = '{_operator_address(records, validator)}'"
    if phase is not None and phase not in UNINDEXED:
        query += f" AND PeersyncPhase = '{phase.value}'"
    client = await connect(settings)
    rows = []
    async for wf in client.list_workflows(query, limit=None if phase in UNINDEXED else limit):
        row = await _row(wf, settings.cluster_id, monikers)
        if phase in UNINDEXED and not (row.phase is None and row.status == "RUNNING"):
            continue
        rows.append(row)
        if len(rows) >= limit:
            break
    return _unique_short_ids(rows, settings.cluster_id)


async def _row(wf: WorkflowExecution, cluster_id: str, monikers: dict[str, str]) -> WorkflowRow:
    attrs = wf.typed_search_attributes
    memo = await wf.memo()  # set by the registry at start; changes started otherwise have none
    operator = attrs.get(VALIDATOR)
    return WorkflowRow(
        workflow_id=wf.id,
        status=wf.status.name if wf.status else "?",
        phase=attrs.get(PHASE),
        validator=operator,
        started=wf.start_time.isoformat(timespec="seconds"),
        short_id=short_change_id(wf.id, cluster_id),
        moniker=monikers.get(operator) if operator else None,
        previous=_text(memo.get("previous")),
        endpoint=_text(memo.get("endpoint")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _unique_short_ids(rows: list[WorkflowRow], cluster_id: str) -> list[WorkflowRow]:
    """Two validators moving at the same height share a short id: those rows show the id without the cluster
    prefix instead (also a prefix the commands accept)."""
    seen: dict[str, int] = {}
    for r in rows:
        seen[r.short_id] = seen.get(r.short_id, 0) + 1
    for r in rows:
        if seen[r.short_id] > 1:
            r.short_id = r.workflow_id.removeprefix(f"endpoint-change-{cluster_id}-")
    return rows


async def _records(settings: Settings) -> list[ValidatorRecord] | None:
    """The chain's validators, for monikers; None (with a line on stderr) when the chain cannot be read: the
    list still shows, with operator addresses."""
    policy = EndpointPolicy.from_setting(settings.endpoint_allow_cidrs)
    try:
        async with ChainRest(settings.chain_rest_url) as chain:
            return await validator_records(chain, policy, settings.bech32_prefix)
    except (ChainError, ValidationError, OSError) as exc:
        print(
            f"peersync: no monikers: cannot read the chain at {settings.chain_rest_url}: {exc}",
            file=sys.stderr,
        )
        return None


def _operator_address(records: list[ValidatorRecord] | None, name: str) -> str:
    """`--validator` as an operator address: resolved on the chain (address or unique moniker); without the
    chain, taken as an address."""
    if records is None:
        return name.replace("'", "")
    try:
        return resolve_validator(
            records, name, lambda r: r.operator_address, lambda r: r.moniker
        ).operator_address
    except UnknownValidatorError as exc:
        fail(f"--validator: {exc}")


def _arrow(r: WorkflowRow) -> str:
    return f"{r.previous or '?'} → {r.endpoint or '(chain)'}"


def changes_table(rows: list[WorkflowRow], cluster_id: str, wide: bool) -> Table:
    """The list as a table: short ids and monikers (fits 80 columns); `wide` adds the full id, Temporal's
    status and the operator address."""
    table = Table(title=f"endpoint changes of cluster {cluster_id}")
    columns = ["id", "validator", "old → new", "phase", "started"]
    if wide:
        columns = ["workflow id", "status", "phase", "validator", "operator address", "old → new", "started"]
    for col in columns:
        # An id must read as one piece (it is typed back): never folded; the other columns give way.
        table.add_column(col, no_wrap=col in ("id", "workflow id"), overflow="fold")
    for r in rows:
        phase = r.phase or f"({r.status.lower()})"
        name = r.moniker or r.validator or "?"
        if wide:
            table.add_row(
                r.workflow_id, r.status, r.phase or "", name, r.validator or "", _arrow(r), r.started
            )
        else:
            table.add_row(r.short_id, name, _arrow(r), phase, r.started.replace("T", " ")[:16])
    return table
