"""Drift: what the chain says each managed consumer should have, against what its cluster applied.

Reads only. The chain is read once for all consumers; each namespace costs one GET of its ConfigMap, which
records (`peersync.io/rolled-hash`) the peer set its pods were last rolled onto.
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.kube_ops import Kube, ManagedNamespace
from core.contracts import ConsumerRef, EndpointSnapshot, ValidatorRecord
from core.desired import desired_peers
from core.peers import peer_set_hash
from core.policy import EndpointPolicy
from workflows.reconcile_contracts import DriftRow

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
        chain.records, chain.opted_in[ns.chain_id], pinned, local_validator, ns.chain_id, policy
    )
    # One request: the rollout state is recorded on the ConfigMap. Only peersync's entries (the desired
    # node ids and those it recorded) are compared: the operator's own entries are never stale.
    applied = kube.read_configmap(ns, want.peers)
    want = want.keeping(applied.peers)  # as the sync does: a validator with no endpoint keeps its entry
    reasons = []
    missing, extra = set(want.peers) - set(applied.peers), set(applied.peers) - set(want.peers)
    if missing:
        reasons.append(f"{len(missing)} peer(s) missing or moved")
    if extra:
        reasons.append(f"{len(extra)} stale peer(s)")
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
        return DriftRow(consumer=ref, state="drifted", reason=", ".join(reasons))
    if applied.unreadable:
        # The operator's entries that do not parse: kept as they are (peersync writes around them), reported.
        note = f"operator entries kept, not parsed: {'; '.join(applied.unreadable)}"
        return DriftRow(consumer=ref, state="clean", reason=note)
    return DriftRow(consumer=ref, state="clean", reason=None)
