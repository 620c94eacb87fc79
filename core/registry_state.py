"""The registry's state and its pure transitions: fingerprints, applying a refresh, overrides.

Deterministic (no I/O, no clock), so RegistryWorkflow can run it and unit tests can drive it directly.

A refresh must add almost nothing to the workflow's history when nothing changed, so the workflow sends
the refresh activity one short fingerprint per bucket of validators, and the activity returns only the
buckets whose fingerprint differs (all of their records, so vanished validators are noticed too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pydantic import BaseModel, Field

from core.contracts import (
    ChangeCommit,
    ChangeRef,
    EndpointSnapshot,
    EndpointStatus,
    Hold,
    ProvedNodeId,
    RegistryAnswer,
    RegistryEntry,
    RegistryView,
    ValidatorRecord,
    unset,
)
from core.ids import endpoint_change_id, manual_change_id, override_cleared_id
from core.node_ids import proof_fingerprint
from core.validator_names import resolve_validator

BUCKETS = 16


def record_fingerprint(record: ValidatorRecord) -> str:
    return hashlib.sha256(record.fingerprint_source().encode()).hexdigest()[:16]


def bucket_of(operator_address: str) -> str:
    return f"{hashlib.sha256(operator_address.encode()).digest()[0] % BUCKETS:x}"


def bucket_fingerprints(records: Iterable[ValidatorRecord]) -> dict[str, str]:
    """bucket -> fingerprint of its records; empty buckets are absent."""
    lines: dict[str, list[str]] = {}
    for record in records:
        lines.setdefault(bucket_of(record.operator_address), []).append(
            f"{record.operator_address}:{record_fingerprint(record)}"
        )
    return {b: hashlib.sha256("\n".join(sorted(ls)).encode()).hexdigest()[:12] for b, ls in lines.items()}


def changed_buckets(
    records: Iterable[ValidatorRecord], known: dict[str, str]
) -> dict[str, list[ValidatorRecord]]:
    """The buckets whose fingerprint differs from `known`, with all their records (activity side)."""
    records = list(records)
    current = bucket_fingerprints(records)
    differing = {b for b in set(current) | set(known) if current.get(b) != known.get(b)}
    out: dict[str, list[ValidatorRecord]] = {b: [] for b in differing}
    for record in records:
        bucket = bucket_of(record.operator_address)
        if bucket in differing:
            out[bucket].append(record)
    return out


class ChangeEvent(BaseModel):
    """An effective endpoint moved (or its node id did): start one EndpointChangeWorkflow for it."""

    operator_address: str
    moniker: str
    endpoint: str | None = Field(description="None: the chain's endpoint (a manual change without one)")
    height: int
    workflow_id: str | None = Field(
        None, description="id of the change to start; None: ids.endpoint_change_id(cluster, operator, height)"
    )
    source: str = Field("registry", description="`registry` (a chain move, a cleared override) or `manual`")
    override: bool = Field(False, description="pin `endpoint` as an operator override at the change's commit")
    previous: str | None = Field(None, description="the endpoint in effect before (what a hold would keep)")
    require_approval: bool = Field(
        False, description="the operator asked for approval of this change", exclude_if=unset
    )

    def change_id(self, cluster_id: str) -> str:
        return self.workflow_id or endpoint_change_id(cluster_id, self.operator_address, self.height)


KEEP_SUPERSEDED = 8
Pins = tuple[dict[str, str], dict[str, str], dict[str, str]]  # overrides, holds, fallbacks
Discovered = dict[str, dict[str, str]]  # operator -> chain id -> proved node id


class CommitVerdict(BaseModel):
    """What the registry answers a change's commit, and which older change (if any) to tell it is superseded."""

    answer: RegistryAnswer
    supersede: str | None = None


class RegistryState(BaseModel):
    """All of RegistryWorkflow's state; carried whole through continue-as-new."""

    cluster_id: str
    entries: dict[str, RegistryEntry] = Field(default_factory=dict)
    height: int = 0
    refreshes: int = 0
    changes_started: int = 0
    overrides_cleared: int = 0
    pending_changes: list[ChangeEvent] = Field(
        default_factory=list,
        description="changes not from a refresh (a cleared override), started by the next",
    )
    version: int = Field(0, description="of the snapshot: grows whenever the pins move")
    epoch: str = Field("", description="the first run id of this registry: versions compare within it")
    manual_changes: int = 0

    def fingerprints(self) -> dict[str, str]:
        return bucket_fingerprints(e.record for e in self.entries.values())

    def apply_refresh(
        self, height: int, buckets: dict[str, list[ValidatorRecord]], edit_heights: dict[str, int]
    ) -> list[ChangeEvent]:
        """Fold the changed buckets in; return the changes whose effective endpoint (or node id) moved."""
        before = self._pins()
        self.height = max(self.height, height)
        self.refreshes += 1
        events: list[ChangeEvent] = []
        seen: set[str] = set()
        for bucket, records in sorted(buckets.items()):
            for record in records:
                seen.add(record.operator_address)
                event = self._apply_record(record, edit_heights.get(record.operator_address, height))
                if event is not None:
                    events.append(event)
            gone = [op for op in self.entries if bucket_of(op) == bucket and op not in seen]
            for op in gone:
                del self.entries[op]
        self._bump_if_moved(before)
        return events

    def _apply_record(self, record: ValidatorRecord, height: int) -> ChangeEvent | None:
        old = self.entries.get(record.operator_address)
        if old is not None and old.record == record:
            return None
        entry = RegistryEntry(record=record, height=height)
        if old is not None:
            entry.last_valid, entry.override, entry.override_height = (
                old.last_valid,
                old.override,
                old.override_height,
            )
            entry.change, entry.superseded, entry.hold = old.change, old.superseded, old.hold
            entry.discovered = old.discovered  # re-probed by the same refresh when the endpoint moved
            newer = old.override_height is None or height > old.override_height
            republished = record.status == EndpointStatus.VALID and (
                old.record.status != EndpointStatus.VALID or record.canonical != old.record.canonical
            )
            if old.override is not None and republished and newer:
                # The chain published a (new) valid endpoint after the operator's override: the chain wins
                # again. Other edits of the details (a website, a note, an invalid endpoint) keep the override.
                entry.override = entry.override_height = None
            if old.hold is not None and republished and height > old.hold.height:
                entry.hold = None  # the chain moved again after the hold: the operator's hold ends
        if record.status == EndpointStatus.VALID:
            entry.last_valid = record.canonical
        self.entries[record.operator_address] = entry
        moved = old is None or entry.effective != old.effective or record.moniker != old.record.moniker
        if old is None or not moved or entry.effective is None:
            return None  # first sight is the baseline, not a change; an invalid endpoint changes nothing
        return ChangeEvent(
            operator_address=record.operator_address,
            moniker=record.moniker,
            endpoint=entry.effective,
            height=height,
            previous=old.effective,
        )

    def set_override(self, operator_address: str, endpoint: str | None) -> ChangeEvent | None:
        """Pin (or, with None, clear) an operator override; it takes effect at once.

        A pin is applied to the consumers by the EndpointChangeWorkflow that sets it. A clear has no such
        workflow behind it, so when it moves the effective endpoint it queues a change (pending_changes)
        back to the one now in effect, and returns it.
        """
        entry = self.entries[operator_address]
        before, pins = entry.effective, self._pins()
        entry.override = endpoint
        entry.override_height = None if endpoint is None else self.height
        self._bump_if_moved(pins)
        if endpoint is not None or entry.effective in (None, before):
            return None
        return self._queue_back(operator_address, entry, before)

    def _queue_back(self, operator_address: str, entry: RegistryEntry, before: str | None) -> ChangeEvent:
        self.overrides_cleared += 1
        event = ChangeEvent(
            operator_address=operator_address,
            moniker=entry.record.moniker,
            endpoint=entry.effective,
            height=self.height,
            workflow_id=override_cleared_id(
                self.cluster_id, operator_address, self.height, self.overrides_cleared
            ),
            previous=before,
        )
        self.pending_changes = [e for e in self.pending_changes if e.operator_address != operator_address]
        self.pending_changes.append(event)
        return event

    def take_pending_changes(self, exclude: set[str]) -> list[ChangeEvent]:
        """The queued changes, minus those of validators a refresh just produced a change for."""
        taken, self.pending_changes = self.pending_changes, []
        return [e for e in taken if e.operator_address not in exclude]

    def _pins(self) -> Pins:
        overrides = {op: e.override for op, e in self.entries.items() if e.override}
        holds = {op: e.hold.endpoint for op, e in self.entries.items() if e.hold}
        fallbacks = {
            op: e.last_valid
            for op, e in self.entries.items()
            if e.last_valid and e.record.status != EndpointStatus.VALID
        }
        return overrides, holds, fallbacks

    def _bump_if_moved(self, before: Pins) -> None:
        if self._pins() != before:
            self.version += 1

    def pinned(self) -> EndpointSnapshot:
        overrides, holds, fallbacks = self._pins()
        return EndpointSnapshot(
            overrides=overrides,
            holds=holds,
            fallbacks=fallbacks,
            discovered=self.discovered_ids(),
            version=self.version,
            epoch=self.epoch,
        )

    # ---- node ids proved at the published endpoints (source `discovered`) ---------------------------------

    def discovered_ids(self) -> Discovered:
        return {
            op: ids
            for op, e in self.entries.items()
            if (ids := {chain: p.node_id for chain, p in e.discovered.items() if p.node_id is not None})
        }

    def discovered_fingerprints(self) -> dict[str, dict[str, str]]:
        """What the refresh needs to report only what changed (core/node_ids.proof_fingerprint)."""
        return {
            op: {chain: proof_fingerprint(p) for chain, p in e.discovered.items()}
            for op, e in self.entries.items()
            if e.discovered
        }

    def apply_discovered(self, found: dict[str, dict[str, ProvedNodeId]]) -> bool:
        """Fold the refresh's new proofs in; True when a proved id changed (the snapshot's version grows, so
        syncs take it)."""
        before = self.discovered_ids()
        for op, proofs in found.items():
            entry = self.entries.get(op)
            if entry is not None:
                entry.discovered = {**entry.discovered, **proofs}
        moved = self.discovered_ids() != before
        if moved:
            self.version += 1
        return moved

    # ---- holds: a cancel that holds ------------------------------------------------------------------------

    def hold_for_change(self, operator_address: str, change_id: str, reason: str, at: str) -> Hold | None:
        """A chain-driven change was cancelled: hold the endpoint in effect before it, at its height, so that
        reconcile and later refreshes keep it. Nothing when that change is no longer the validator's newest
        (a newer one superseded it) or nothing was in effect before it."""
        entry = self.entries.get(operator_address)
        if entry is None or entry.change is None or entry.change.id != change_id or not entry.change.previous:
            return None
        hold = Hold(
            endpoint=entry.change.previous, height=entry.change.height, reason=reason, by=change_id, at=at
        )
        return self._hold(entry, hold)

    def place_hold(self, operator_address: str, reason: str, at: str) -> Hold:
        """`peersync hold`: keep the endpoint in effect now until the chain moves again or it is released."""
        entry = self.entries[operator_address]
        if entry.effective is None:
            raise ValueError(f"{entry.record.moniker} has no endpoint in effect to hold")
        height = max(entry.height, self.height)
        return self._hold(
            entry, Hold(endpoint=entry.effective, height=height, reason=reason, by="peersync hold", at=at)
        )

    def _hold(self, entry: RegistryEntry, hold: Hold) -> Hold:
        pins = self._pins()
        entry.hold = hold
        self._bump_if_moved(pins)
        return hold

    def release_hold(self, operator_address: str) -> ChangeEvent | None:
        """Release a hold; when that moves the endpoint in effect, queue the change to the one now in effect
        (started by the next refresh, as a cleared override's is) and return it."""
        entry = self.entries[operator_address]
        before, pins = entry.effective, self._pins()
        entry.hold = None
        self._bump_if_moved(pins)
        if entry.effective in (None, before):
            return None
        return self._queue_back(operator_address, entry, before)

    def manual_in_flight(self, operator_address: str) -> str | None:
        """The validator's newest change when it is an operator's (what clearing the override supersedes)."""
        change = self.entries[operator_address].change
        return change.id if change is not None and change.manual else None

    # ---- the changes: the registry alone starts, supersedes and commits them ------------------------------

    def manual_change(
        self, operator_address: str, endpoint: str | None, override: bool, require_approval: bool = False
    ) -> ChangeEvent:
        """An operator's change now (CLI `update`), under an id of its own: one per request."""
        entry = self.entries[operator_address]
        self.manual_changes += 1
        return ChangeEvent(
            operator_address=operator_address,
            moniker=entry.record.moniker,
            endpoint=endpoint,
            previous=entry.effective,
            height=self.height,
            workflow_id=manual_change_id(self.cluster_id, self.height, self.manual_changes),
            source="manual",
            override=override,
            require_approval=require_approval,
        )

    def record_started(self, event: ChangeEvent) -> str | None:
        """`event`'s change runs now: it is the validator's newest. Returns the older change it supersedes."""
        entry = self.entries.get(event.operator_address)
        if entry is None:
            return None
        change_id = event.change_id(self.cluster_id)
        older = entry.change.id if entry.change is not None and entry.change.id != change_id else None
        if older is not None:
            entry.superseded = [*entry.superseded, older][-KEEP_SUPERSEDED:]
        entry.change = ChangeRef(
            id=change_id,
            height=event.height,
            endpoint=event.endpoint,
            previous=event.previous,
            manual=event.source == "manual",
        )
        return older

    def commit(self, commit: ChangeCommit) -> CommitVerdict:
        """A change passed its gate. Refused when a newer change of the validator exists (by the heights the
        registry holds, never by parsing ids); else its override (if any) is pinned and the snapshot given.

        A change the registry did not start (`temporal workflow start` by hand, or one started by the
        previous release) is adopted when it is not older than the newest the registry holds."""
        entry = self.entries.get(commit.operator_address)
        if entry is None:
            return CommitVerdict(
                answer=RegistryAnswer(
                    request_id="", refused=f"{commit.operator_address} is not in the registry"
                )
            )
        current = entry.change
        stale = commit.change_id in entry.superseded or (
            current is not None
            and current.id != commit.change_id
            and commit.height is not None
            and commit.height < current.height
        )
        if stale:
            newer = current.id if current is not None else "a newer change"
            return CommitVerdict(
                answer=RegistryAnswer(request_id="", refused=f"superseded by {newer}", current=newer)
            )
        supersede = None
        if current is None or current.id != commit.change_id:
            supersede = current.id if current is not None else None
            if supersede is not None:
                entry.superseded = [*entry.superseded, supersede][-KEEP_SUPERSEDED:]
            height = self.height if commit.height is None else commit.height
            entry.change = ChangeRef(
                id=commit.change_id, height=height, endpoint=commit.endpoint, manual=commit.height is None
            )
        if commit.override and entry.override != commit.endpoint:
            self.set_override(commit.operator_address, commit.endpoint)
        return CommitVerdict(
            answer=RegistryAnswer(request_id="", snapshot=self.pinned()), supersede=supersede
        )

    def view(self) -> list[RegistryView]:
        counts: dict[str, int] = {}
        for entry in self.entries.values():
            counts[entry.record.moniker] = counts.get(entry.record.moniker, 0) + 1
        return [
            RegistryView(
                operator_address=op,
                moniker=e.record.moniker,
                endpoint=e.record.endpoint,
                status=e.record.status,
                reason=e.record.reason,
                height=e.height,
                effective=e.effective,
                override=e.override,
                collision=counts[e.record.moniker] > 1,
                hold=e.hold,
                change=e.change.id if e.change else None,
                previous=e.change.previous if e.change else None,
                discovered=e.discovered,
            )
            for op, e in sorted(self.entries.items(), key=lambda kv: (kv[1].record.moniker, kv[0]))
        ]

    def resolve(self, validator: str) -> RegistryEntry:
        """An entry by operator address, or by moniker when exactly one validator carries it (a KeyError,
        UnknownValidatorError, names why not)."""
        return resolve_validator(
            self.entries.values(), validator, lambda e: e.record.operator_address, lambda e: e.record.moniker
        )
