"""Inputs and outputs of reconciliation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workflows.contracts import ConsumerRef, Contract

DriftState = Literal["clean", "drifted", "skipped", "repaired", "failed"]


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
    failed: list[DriftRow] = Field(default_factory=list)
    skipped: list[DriftRow] = Field(default_factory=list)
