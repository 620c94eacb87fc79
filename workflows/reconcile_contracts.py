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


# One of peersync's peer entries that differs: `missing` (the chain wants it, the ConfigMap lacks its node
# id), `moved` (its node id is there at another address), `stale` (in the ConfigMap, not wanted).
PeerDriftKind = Literal["missing", "moved", "stale"]


class PeerDrift(Contract):
    kind: PeerDriftKind
    moniker: str | None = Field(None, description="None: a node id no validator on the chain derives")
    operator_address: str | None = None
    want: str | None = Field(None, description="the entry the chain calls for (missing, moved)")
    applied: str | None = Field(None, description="the entry in the ConfigMap (moved, stale)")

    def describe(self) -> str:
        """`missing bob 3f2a1b2c..@10.0.0.7:26656`, `moved bob 3f2a1b2c..@old:p -> new:p`, `stale carol
        @10.0.0.9:26656`: who and where, the node id shortened (-o wide and --json give it whole)."""
        who = self.moniker or "unknown validator"
        if self.kind == "stale":
            return f"stale {who} @{_address(self.applied)}"
        entry = f"{_short_id(self.want)}@{_address(self.want)}"
        if self.kind == "moved":
            return f"moved {who} {_short_id(self.want)}@{_address(self.applied)} -> {_address(self.want)}"
        return f"missing {who} {entry}"


def _short_id(peer: str | None) -> str:
    return (peer or "").partition("@")[0][:8] + ".."


def _address(peer: str | None) -> str:
    return (peer or "").partition("@")[2]


class DriftRow(Contract):
    consumer: ConsumerRef | None
    namespace: str = ""
    state: DriftState
    reason: str | None = None
    # Added with issue 13 (a default: reports recorded before it replay): the peers that differ, by name.
    peers: list[PeerDrift] = Field(default_factory=list)


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
