"""Drift: what the chain says each managed consumer should have, against what its cluster applied.

Reads only. The chain is read once for all consumers; each namespace costs one GET of its ConfigMap, which
records (`peersync.io/rolled-hash`) the peer set its pods were last rolled onto.
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.kube_ops import Kube, ManagedNamespace
from core.contracts import ConsumerRef, EndpointSnapshot, ValidatorRecord
from core.desired import desired_peers
from core.peers import UPSTREAM_SCHEME, peer_set_hash
from core.policy import EndpointPolicy
from workflows.reconcile_contracts import DriftRow, PeerDrift, PeerDriftKind

# The reason when the peers are right and only the pods lag: a repair writes nothing then.
ROLLOUT_ONLY_DRIFT = "pods not rolled onto the peer set in the ConfigMap"


class ChainView(BaseModel):
    records: list[ValidatorRecord]
    opted_in: dict[str, list[str]]  # launched chain id -> valcons
    consumer_ids: dict[str, str]  # launched chain id -> consumer id


def drift_of(
    kube: Kube,
    ns: ManagedNamespace,
    chain: ChainView,
    pinned: EndpointSnapshot,
    local_validator: str | None,
    policy: EndpointPolicy,
) -> DriftRow:
    ref = ConsumerRef(
        cluster_id=kube.cluster_id, namespace=ns.name, chain_id=ns.chain_id, consumer_id=ns.consumer_id
    )
    if ns.chain_id not in chain.opted_in:
        return DriftRow(consumer=ref, state="skipped", reason=f"{ns.chain_id} is not a launched consumer")
    want = desired_peers(
        chain.records,
        chain.opted_in[ns.chain_id],
        pinned,
        local_validator,
        ns.chain_id,
        policy,
        source=ns.layout.node_ids,
    )
    # One request: the rollout state is recorded on the ConfigMap. Only peersync's entries (the desired
    # node ids and those it recorded) are compared: the operator's own entries are never stale.
    applied = kube.read_configmap(ns, want.peers)
    want = want.keeping(applied.peers)  # as the sync does: a validator with no endpoint keeps its entry
    peers = peer_drift(want.by_validator, applied.peers, chain.records, ns.chain_id)
    reasons = ["; ".join(p.describe() for p in peers)] if peers else []
    if applied.problems:
        reasons.append(f"unreadable entries: {'; '.join(applied.problems)}")
    if not reasons and applied.running_hash != peer_set_hash(want.peers):
        reasons.append(ROLLOUT_ONLY_DRIFT)
    if reasons and ns.layout.strategy != "live":
        # A repair would restart the pods: say now if that restart would be refused (two signers).
        refusal = kube.restart_refusal_in(ns)
        if refusal is not None:
            reasons.append(f"restart refused: {refusal}")
    if reasons:
        return DriftRow(consumer=ref, state="drifted", reason=", ".join(reasons), peers=peers)
    if applied.unreadable:
        # The operator's entries that do not parse: kept as they are (peersync writes around them), reported.
        note = f"operator entries kept, not parsed: {'; '.join(applied.unreadable)}"
        return DriftRow(consumer=ref, state="clean", reason=note)
    return DriftRow(consumer=ref, state="clean", reason=None)


def peer_drift(
    want: dict[str, str], applied: list[str], records: list[ValidatorRecord], chain_id: str
) -> list[PeerDrift]:
    """Which of peersync's entries differ, by validator: `want` is operator address -> wanted entry, `applied`
    the ConfigMap's entries. Entries are matched by node id, so a validator at another address is one
    `moved` row, not a missing plus a stale one."""
    by_op = {r.operator_address: r for r in records}
    present, wanted = set(applied), set(want.values())
    applied_by_id = {p.partition("@")[0]: p for p in applied if p not in wanted}
    owner = {peer.partition("@")[0]: by_op.get(op) for op, peer in want.items()}
    rows: list[PeerDrift] = []
    moved_from: set[str | None] = set()
    for op, peer in sorted(want.items(), key=lambda kv: (_moniker(by_op.get(kv[0])) or "", kv[0])):
        if peer in present:
            continue
        now = applied_by_id.get(peer.partition("@")[0])
        moved_from.add(now)
        kind: PeerDriftKind = "missing" if now is None else "moved"
        rows.append(
            PeerDrift(kind=kind, moniker=_moniker(by_op.get(op)), operator_address=op, want=peer, applied=now)
        )
    stale = [p for p in applied if p not in wanted and p not in moved_from]
    if any(p.partition("@")[0] not in owner for p in stale):
        # A node id no wanted entry has: whose it is costs one derivation per validator, so only now.
        derived = {UPSTREAM_SCHEME.node_id(r.moniker, chain_id): r for r in records}
        owner = {**derived, **owner}
    for peer in stale:
        record = owner.get(peer.partition("@")[0])
        op = record.operator_address if record else None
        rows.append(PeerDrift(kind="stale", moniker=_moniker(record), operator_address=op, applied=peer))
    return rows


def _moniker(record: ValidatorRecord | None) -> str | None:
    return record.moniker if record else None
