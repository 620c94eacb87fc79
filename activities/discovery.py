"""Which consumer namespaces a validator's move affects, as a pure function of what was read.

Shared by the `discover_affected_consumers` activity and the CLI's dry-run plan (workers/plan.py), so the
plan lists exactly the consumers a change would sync and skips the others for the same reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from activities.chain_view import ConsumerMembership
from activities.kube_build import ManagedNamespace
from core.contracts import (
    AffectedConsumer,
    ConsumerRef,
    Discovery,
    EndpointSnapshot,
    SkippedConsumer,
    ValidatorRecord,
)
from core.desired import node_for
from core.node_ids import NodeIdError, NodeIdSource
from core.upstream import upstream_ports

if TYPE_CHECKING:  # a type only: the kube client module is I/O, this one is not
    from activities.kube_ops import UnusableNamespace


def affected_consumers(
    record: ValidatorRecord,
    memberships: list[ConsumerMembership],
    namespaces: list[ManagedNamespace],
    broken: list[UnusableNamespace],
    cluster_id: str,
) -> Discovery:
    """Launched consumers the validator is opted in to that this cluster runs, and why others are not."""
    # A chain may run in several namespaces (a validator and its sentries): each one is a node to sync.
    by_chain: dict[str, list[ManagedNamespace]] = {}
    for ns in namespaces:
        by_chain.setdefault(ns.chain_id, []).append(ns)
    affected: list[AffectedConsumer] = []
    skipped = [
        SkippedConsumer(chain_id=b.chain_id or "?", consumer_id="?", reason=f"namespace {b.name}: {b.reason}")
        for b in broken
    ]
    claimed = {b.chain_id for b in broken}
    for m in memberships:
        running = by_chain.get(m.chain_id, [])
        if record.valcons not in m.opted_in:
            skipped.append(
                SkippedConsumer(
                    chain_id=m.chain_id, consumer_id=m.consumer_id, reason="validator not opted in"
                )
            )
        elif not running:
            if m.chain_id not in claimed:  # else its unusable namespace's row already says why
                skipped.append(
                    SkippedConsumer(
                        chain_id=m.chain_id, consumer_id=m.consumer_id, reason="not run by this cluster"
                    )
                )
        else:
            for ns in running:
                try:
                    node_id, port = _expected_node(record, m.chain_id, ns.layout.node_ids)
                except NodeIdError as exc:  # nothing can be written for it there: say why, sync nothing
                    skipped.append(
                        SkippedConsumer(
                            chain_id=m.chain_id,
                            consumer_id=m.consumer_id,
                            reason=f"namespace {ns.name} ({ns.layout.node_ids} node ids): {exc.reason}",
                        )
                    )
                    continue
                ref = ConsumerRef(
                    cluster_id=cluster_id, namespace=ns.name, chain_id=m.chain_id, consumer_id=m.consumer_id
                )
                affected.append(AffectedConsumer(consumer=ref, p2p_port=port, node_id=node_id))
    return Discovery(affected=affected, skipped=skipped)


def _expected_node(record: ValidatorRecord, chain_id: str, source: NodeIdSource) -> tuple[str | None, int]:
    """The node id the probe must see at the new endpoint (None under `discovered`: the probe there only
    checks that a node answers; the id it proves is learned by the registry), and the P2P port."""
    if source == "discovered":
        return None, upstream_ports(chain_id).p2p
    return node_for(record, chain_id, source, EndpointSnapshot(), {})
