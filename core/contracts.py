"""The contracts between workflows, activities, the CLI and operators: one pydantic model per input.

Everything here is plain data (deterministic to build and compare), safe to import in workflow code.
Endpoints travel as canonical strings ("host" or "host:port", IPv6 bracketed) that have already passed
the grammar of activities/endpoint.py.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OPERATOR_ADDRESS_MAX = 128
DETAILS_MAX = 280


def unset(value: object) -> bool:
    """`exclude_if` of a field added after a release: the field is left out of the payload while it holds
    its default, so the previous release (extra="forbid") still accepts every input that does not use it
    (a newer CLI, or a rolling upgrade's new worker, talking to an older worker); one that uses it is
    refused there loudly rather than ignored."""
    return not value


class Contract(BaseModel):
    """Strict: unknown fields are an error, so a typo in `temporal workflow start --input` fails at once."""

    model_config = ConfigDict(extra="forbid")


# ---- the registry --------------------------------------------------------------------------------------


class EndpointStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"


class ValidatorRecord(Contract):
    """One validator as the chain publishes it, with its parsed endpoint. Keyed by operator address."""

    operator_address: str
    moniker: str
    valcons: str
    bond_status: str
    jailed: bool = False
    details: str
    endpoint: str | None = Field(None, description="the endpoint text found in details, as published")
    status: EndpointStatus
    reason: str | None = None
    canonical: str | None = Field(None, description="canonical endpoint when status is valid")

    def fingerprint_source(self) -> str:
        return "\x1f".join([self.moniker, self.valcons, self.bond_status, str(self.jailed), self.details])


class ChangeRef(Contract):
    """An EndpointChangeWorkflow the registry started (or adopted at its commit), and the height it is for."""

    id: str
    height: int = Field(description="chain height of the change (for a manual one: the registry's height)")
    endpoint: str | None = None
    previous: str | None = Field(None, description="the endpoint in effect before it (what a hold keeps)")
    manual: bool = Field(False, description="an operator's change (`peersync update`), not the chain's")


class Hold(Contract):
    """An operator's hold on a validator: `endpoint` stays in effect, whatever the chain published up to
    `height`, until the chain moves again (a newer edit) or the hold is released."""

    endpoint: str
    height: int
    reason: str
    by: str = Field(description="who placed it: the cancelled change's id, or `peersync hold`")
    at: str = Field(description="when (UTC, ISO 8601)")


class ProvedNodeId(Contract):
    """What the authenticated probe learned at a validator's published endpoint for one consumer chain
    (node-id source `discovered`): the id its node proved there, or why none was proved."""

    endpoint: str = Field(description="host:port probed (the published host, the chain's P2P port)")
    node_id: str | None = Field(None, pattern=r"^[0-9a-f]{40}$")
    reason: str | None = Field(None, description="why no id was proved (unreachable, not a CometBFT node)")


class RegistryEntry(Contract):
    record: ValidatorRecord
    height: int = Field(0, description="height at which the published record was last seen to change")
    last_valid: str | None = Field(None, description="the last valid endpoint the chain published")
    override: str | None = None
    override_height: int | None = Field(None, description="chain height when the override was set")
    change: ChangeRef | None = Field(None, description="the newest change the registry started or adopted")
    hold: Hold | None = None
    superseded: list[str] = Field(
        default_factory=list, description="ids of older changes it superseded (newest last, a few kept)"
    )
    discovered: dict[str, ProvedNodeId] = Field(
        default_factory=dict, description="chain id -> the node id proved at the published endpoint"
    )

    @property
    def effective(self) -> str | None:
        """The endpoint in effect: the operator's override, else a hold, else the last valid published one."""
        return self.override or (self.hold.endpoint if self.hold else None) or self.last_valid


class RegistryView(Contract):
    """`peersync registry --json` rows (DESIGN: fixed fields first)."""

    operator_address: str
    moniker: str
    endpoint: str | None
    status: EndpointStatus
    reason: str | None
    height: int
    effective: str | None = None
    override: str | None = None
    collision: bool = False
    hold: Hold | None = None
    change: str | None = Field(None, description="id of the validator's newest change (the one that may act)")
    discovered: dict[str, ProvedNodeId] = Field(
        default_factory=dict, description="chain id -> node id proved at the published endpoint (or why not)"
    )
    previous: str | None = Field(
        None, description="the endpoint in effect before that change (what `peersync undo` pins again)"
    )


# ---- an endpoint change ---------------------------------------------------------------------------------


class Phase(StrEnum):
    VALIDATING = "validating"
    DISCOVERING = "discovering"
    PROBING = "probing"
    BLOCKED = "blocked"
    AWAITING_APPROVAL = "awaiting-approval"
    # Approval received, not acted on yet (a pause holds it): shown by the query and the UI, not indexed.
    APPROVED = "approved"
    SYNCING = "syncing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


FINAL_PHASES = frozenset({Phase.DONE, Phase.FAILED, Phase.CANCELLED, Phase.SUPERSEDED})


class EndpointSnapshot(Contract):
    """What the registry knows beyond the chain, versioned: the endpoints in effect that the chain does not
    publish right now. Handed from the registry to each change at its commit, and by the change (or a
    reconcile) to every ConsumerSync it asks; a sync never reads it back from the registry.

    `version` grows whenever the pins move, within one `epoch` (one registry's lifetime, named by when it
    began: a registry started afresh begins again at version 0, and its snapshots are the newest)."""

    overrides: dict[str, str] = Field(default_factory=dict)
    holds: dict[str, str] = Field(default_factory=dict, description="held endpoints (a cancelled move)")
    fallbacks: dict[str, str] = Field(
        default_factory=dict, description="last valid, while the published one is not"
    )
    discovered: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="operator address -> chain id -> node id its node proved (node-id source `discovered`)",
    )
    registry: bool = Field(True, description="False: no registry exists (yet), the chain alone decides")
    version: int = 0
    epoch: str = ""

    def newer_than(self, other: EndpointSnapshot | None) -> bool:
        return other is None or (self.epoch, self.version) > (other.epoch, other.version)


class ChangeCommit(Contract):
    """An EndpointChange passed its gate and is about to sync: the registry checks it is still the newest
    change of its validator, pins its endpoint when it is an override, and answers with the snapshot."""

    change_id: str
    operator_address: str
    endpoint: str
    override: bool = False
    height: int | None = Field(None, description="the change's chain height; None: newest (started by hand)")


class RegistryAsk(Contract):
    """Signal `share` to the RegistryWorkflow: answer `reply_to` (signal `registry_answer`) with the snapshot,
    after committing `commit` if given."""

    request_id: str
    reply_to: str
    commit: ChangeCommit | None = None


class RegistryAnswer(Contract):
    request_id: str
    snapshot: EndpointSnapshot | None = None
    refused: str | None = Field(None, description="why the commit was refused (a newer change exists)")
    current: str | None = Field(None, description="id of the change that is current instead")


class HoldAsk(Contract):
    """Signal `hold` (a cancelled change asks for it) or update `place_hold` (`peersync hold`)."""

    validator: str = Field(
        min_length=1, max_length=OPERATOR_ADDRESS_MAX, description="operator address or moniker"
    )
    reason: str = Field("no reason given", min_length=1, max_length=500)
    change_id: str | None = Field(None, description="the cancelled change: held only if still the newest")


class ChangeAsk(Contract):
    """Update `request_change` of the RegistryWorkflow: an operator asks for a change now (CLI `update`)."""

    validator: str = Field(
        min_length=1, max_length=OPERATOR_ADDRESS_MAX, description="operator address or moniker"
    )
    endpoint: str | None = Field(None, min_length=1, max_length=300, description="None: the chain's endpoint")
    override: bool = False
    require_approval: bool = Field(
        False,
        description="ask for approval before any restart, whatever the worker's PEERSYNC_REQUIRE_APPROVAL",
        exclude_if=unset,
    )


class EndpointChangeRequest(Contract):
    """Input of EndpointChangeWorkflow. `temporal workflow start --input '{"validator": ..., "endpoint": ...}'`."""

    validator: str = Field(
        min_length=1, max_length=OPERATOR_ADDRESS_MAX, description="operator address or moniker"
    )
    endpoint: str | None = Field(
        None, min_length=1, max_length=300, description="host[:port]; omitted: the chain's current endpoint"
    )
    source: Literal["manual", "registry", "watcher"] = "manual"
    height: int | None = Field(None, ge=0, description="chain height of the change, when known")
    override: bool = Field(False, description="pin `endpoint` as an operator override in the registry")
    require_approval: bool = Field(
        False,
        description="ask for approval before any restart, whatever the worker's PEERSYNC_REQUIRE_APPROVAL",
        exclude_if=unset,
    )


class ValidatedChange(Contract):
    operator_address: str
    moniker: str
    endpoint: str
    host: str = Field("", description="the endpoint's host as written in a peer (IPv6 in brackets)")
    require_approval: bool = Field(
        False, description="PEERSYNC_REQUIRE_APPROVAL of the worker that validated"
    )
    probe_budget_seconds: float | None = Field(
        None, gt=0, description="PEERSYNC_PROBE_BUDGET of the worker that validated; None: policies.PROBE"
    )


class ConsumerRef(Contract):
    """A consumer chain as this cluster runs it: one namespace."""

    cluster_id: str
    namespace: str
    chain_id: str
    consumer_id: str


class AffectedConsumer(Contract):
    consumer: ConsumerRef
    p2p_port: int = Field(ge=1, le=65535)
    node_id: str | None = Field(
        None, description="the id the validator's node of this consumer must prove at the new endpoint"
    )


class SkippedConsumer(Contract):
    chain_id: str
    consumer_id: str
    reason: str


class Discovery(Contract):
    affected: list[AffectedConsumer]
    skipped: list[SkippedConsumer]


class ConsumerStep(Contract):
    """One row of the live progress table."""

    namespace: str
    chain_id: str
    step: str = "pending"
    state: str = "waiting"
    detail: str | None = None
    live: str | None = Field(None, description="what dial_peers did on the running nodes (live strategies)")


class ProbeStatus(Contract):
    """The reachability gate while it retries (issue 13 item 3): what `status`, `update --wait` and the UI show
    before the change is blocked. Times are the workflow's clock (UTC)."""

    attempts: int = Field(ge=0, description="attempts made so far (the first, quick one included)")
    last_error: str | None = Field(None, description="why the last attempt failed")
    deadline: datetime = Field(description="when the change stops retrying and is blocked")
    next_attempt: datetime | None = Field(None, description="when the next attempt starts (None: running)")
    passed: bool = False


class Progress(Contract):
    """Query `progress` of EndpointChangeWorkflow."""

    phase: Phase
    validator: str
    endpoint: str | None
    paused: bool = False
    awaiting_approval: bool = False
    reason: str | None = None
    consumers: list[ConsumerStep] = []
    skipped: list[SkippedConsumer] = []
    probe: ProbeStatus | None = Field(None, description="the probe's attempts while it retries, then its end")


class SupersededNotice(Contract):
    """A newer change of the same validator started: this one has nothing left to do."""

    by: str = Field(description="workflow id of the newer change")


class CancelRequest(Contract):
    reason: str = Field("no reason given", min_length=1, max_length=500)


class ApproveRequest(Contract):
    note: str | None = Field(None, max_length=500)


# ---- a consumer sync ------------------------------------------------------------------------------------


class SyncRequest(Contract):
    requested_by: str = Field(description="workflow id or `cli` / `reconcile`")
    reason: str = ""
    approved: bool = Field(False, description="an operator approved restarts (PEERSYNC_REQUIRE_APPROVAL)")
    request_id: str | None = Field(None, description="dedupes a request sent twice (activity retries)")
    reply_to: str | None = Field(None, description="workflow id to signal `sync_done` with the result")
    forced_hosts: list[str] = Field(
        default_factory=list, description="hosts an operator approved past a failed probe: not probed again"
    )
    snapshot: EndpointSnapshot | None = Field(
        None, description="the registry's pins this request carries (older than the sync's newest: ignored)"
    )
    # Stamped by whoever hands the request over (worker activity or CLI) from its settings now, so a
    # long-lived ConsumerSyncWorkflow follows PEERSYNC_REQUIRE_APPROVAL and namespace labels as they change.
    require_approval: bool | None = None
    consumer: ConsumerRef | None = None
    # The operator's own ask for this request (`peersync sync --require-approval`): its restart waits for an
    # approval whatever the setting above, and the setting the sync keeps is not changed by it.
    ask_approval: bool = Field(False, exclude_if=unset)
    # The sender expects this sync to restart the workload (an EndpointChange: a validator moved), so the sync
    # asks the cluster's rollout slot at its start, its round trip alongside the reads; a hint, never a must.
    expect_restart: bool = Field(False, exclude_if=unset)


NEEDS_APPROVAL = "restart needs approval (PEERSYNC_REQUIRE_APPROVAL)"
NO_RESTART = "no restart needed: the pods already run these peers"


class SyncResult(Contract):
    consumer: ConsumerRef
    sync_number: int
    changed: bool
    old_peers: list[str]
    new_peers: list[str]
    kept_unreachable: list[str] = Field(
        default_factory=list, description="new endpoints that failed the probe"
    )
    peers_hash: str
    restarted: bool
    rollout: str | None = None
    error: str | None = None
    live: str | None = Field(None, description="what dial_peers did on the running nodes (live strategies)")
    caught_up: str | None = Field(
        None, description="after a restart: the nodes caught up with the chain (catch-up gating), and when"
    )

    def outcome(self) -> str:
        """What the sync did, in words: `rollout` alone misleads when nothing restarted (it is then the
        message of a wait that only confirmed the pods already run this peer set)."""
        if self.error:
            return self.error
        done = ["peers written"] if self.changed else []
        if self.live:
            done.append("dialled live")
        if self.restarted:
            done.append("restarted")
        elif self.rollout == NEEDS_APPROVAL:
            done.append(NEEDS_APPROVAL)
        elif self.live:
            done[-1] += " (no restart)"
        else:
            done.append(NO_RESTART)
        if self.kept_unreachable:
            hosts = ", ".join(sorted({p.rpartition("@")[2] for p in self.kept_unreachable}))
            done.append(
                f"kept the old address of {len(self.kept_unreachable)} peer(s): {hosts} does not answer"
            )
        return ", ".join(done)


class SyncReply(Contract):
    """What ConsumerSyncWorkflow signals back (`sync_done`) to a workflow that asked for a sync."""

    request_id: str
    result: SyncResult


class EndpointChangeResult(Contract):
    validator: str
    moniker: str
    endpoint: str
    phase: Phase
    consumers: list[SyncResult]
    skipped: list[SkippedConsumer]


# ---- the peers a consumer should have ------------------------------------------------------------------


class DesiredPeers(Contract):
    peers: list[str]
    by_validator: dict[str, str] = Field(description="operator address -> peer string")
    missing: list[str] = Field(
        default_factory=list, description="opted-in validators with no endpoint in effect"
    )
    refused: dict[str, str] = Field(
        default_factory=dict, description="operator address -> a pinned endpoint the policy refuses, and why"
    )
    authoritative: bool = Field(
        True, description="False: no registry exists yet; the chain alone decided (no pins known)"
    )
    keep_if_present: dict[str, str] = Field(
        default_factory=dict,
        description="operator address -> node id of a `missing` validator: an applied entry with this node id "
        "stays (its last known endpoint beats none; never restart to drop an opted-in validator)",
    )

    keep_at_host: dict[str, str] = Field(
        default_factory=dict,
        description="operator address -> host of a validator whose node id cannot be derived (its moniker "
        "collides with another's): its applied entry at that host stays as it is, nothing new is written",
    )

    def keeping(self, applied: list[str]) -> DesiredPeers:
        """These peers plus the applied entries of `keep_if_present` validators (by node id) and of
        `keep_at_host` ones (by host: a moniker collision leaves no node id to look for)."""
        present = {p.split("@", 1)[0]: p for p in applied}
        kept = {op: present[node] for op, node in self.keep_if_present.items() if node in present}
        at_host = {p.split("@", 1)[1].rsplit(":", 1)[0]: p for p in applied if "@" in p}
        kept |= {op: at_host[host] for op, host in self.keep_at_host.items() if host in at_host}
        if not kept:
            return self
        return self.model_copy(
            update={
                "peers": sorted(set(self.peers) | set(kept.values())),
                "by_validator": {**self.by_validator, **kept},
            }
        )
