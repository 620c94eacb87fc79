"""Inputs and outputs of reconciliation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.contracts import ConsumerRef, Contract

# After a repair: `repaired` only when the consumer runs the right peers; `awaiting-approval` when the
# ConfigMap is written but its restart waits for approval (PEERSYNC_REQUIRE_APPROVAL); `failed` otherwise
# (the sync failed, its restart was refused, a new address did not answer, no answer came).
DriftState = Literal["clean", "drifted", "skipped", "repaired", "awaiting-approval", "failed"]


class ReconcileInput(Contract):
    dry_run: bool = Field(False, description="report drift, repair nothing")


class DriftRow(Contract):
    consumer: ConsumerRef | None
    namespace: str = ""
    state: DriftState
    reason: str | None = None


class DriftReport(Contract):
    rows: list[DriftRow]


class ReconcileReport(Contract):
    dry_run: bool
    clean: list[DriftRow] = Field(default_factory=list)
    drifted: list[DriftRow] = Field(default_factory=list, description="found drifted (repaired or not)")
    repaired: list[DriftRow] = Field(default_factory=list)
    awaiting_approval: list[DriftRow] = Field(
        default_factory=list, description="written, but the restart waits for approval: not repaired yet"
    )
    failed: list[DriftRow] = Field(default_factory=list)
    skipped: list[DriftRow] = Field(default_factory=list)
