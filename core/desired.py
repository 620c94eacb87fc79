"""The peer list a consumer's nodes should have, from the chain's records and the registry's pins. Pure."""

from __future__ import annotations

from core.contracts import DesiredPeers, EndpointSnapshot, EndpointStatus, ValidatorRecord
from core.endpoint import EndpointError, parse_endpoint, parse_endpoint_syntax
from core.node_ids import NodeIdError, NodeIdSource, published_node
from core.peers import UPSTREAM_SCHEME, Peer
from core.policy import EndpointPolicy
from core.upstream import upstream_ports


def desired_peers(
    records: list[ValidatorRecord],
    opted_in: list[str],
    pinned: EndpointSnapshot,
    local_validator: str | None,
    chain_id: str,
    policy: EndpointPolicy,
    source: NodeIdSource = "upstream",
) -> DesiredPeers:
    """Every opted-in validator but the local one, at the endpoint in effect: the operator's override,
    else the endpoint an operator's hold keeps, else the valid published one, else the last valid one the
    registry saw. Node ids (and ports) come from the namespace's `source` (core/node_ids.py); a validator
    with no valid id under it is refused with the reason and nothing is written for it.

    A validator with none of these (`missing`) is not dropped from a consumer that already has its entry:
    `keep_if_present` names its node id, and the sync keeps that entry. The registry would have kept its last
    valid endpoint; when there is no registry (`pinned.registry` False) that entry is the best knowledge left."""
    by_valcons = {r.valcons: r for r in records}
    by_validator: dict[str, str] = {}
    missing: list[str] = []
    keep: dict[str, str] = {}
    refused: dict[str, str] = {}
    at_host: dict[str, str] = {}
    collided = moniker_collisions(records)
    for valcons in opted_in:
        record = by_valcons.get(valcons)
        if record is None or record.operator_address == local_validator:
            continue
        op = record.operator_address
        published = record.canonical if record.status == EndpointStatus.VALID else None
        endpoint = None
        # Pins are re-checked here: an override set straight through Temporal never met the policy, and
        # the policy may have tightened since. A refused pin gives way to the next endpoint in line.
        # A hold (a cancelled move) keeps the endpoint before it, over what the chain publishes now.
        for text in (pinned.overrides.get(op), pinned.holds.get(op), published, pinned.fallbacks.get(op)):
            if text is None:
                continue
            try:
                endpoint = parse_endpoint(text, policy)
                break
            except EndpointError as exc:
                refused.setdefault(op, str(exc))
        try:
            node_id, port = node_for(record, chain_id, source, pinned, collided)
        except NodeIdError as exc:  # no valid node id: nothing is written for it, its entry stays
            refused[op] = exc.reason
            missing.append(op)
            if endpoint is not None:
                at_host[op] = endpoint.host_literal
            continue
        if endpoint is None:
            missing.append(op)
            keep[op] = node_id
            continue
        by_validator[op] = Peer(node_id=node_id, host=endpoint.host, port=port).render()
    return DesiredPeers(
        peers=sorted(by_validator.values()),
        by_validator=by_validator,
        missing=missing,
        refused=refused,
        authoritative=pinned.registry,
        keep_if_present=keep,
        keep_at_host=at_host,
    )


def node_for(
    record: ValidatorRecord,
    chain_id: str,
    source: NodeIdSource,
    pinned: EndpointSnapshot,
    collided: dict[str, str],
) -> tuple[str, int]:
    """The node id and P2P port of `record`'s node on `chain_id` under `source`; NodeIdError says why none."""
    derived_port = upstream_ports(
        chain_id
    ).p2p  # the port the upstream scheme uses; published may name another
    op = record.operator_address
    if source == "published":
        p2p_host = None
        if record.status == EndpointStatus.VALID and record.canonical:
            p2p_host = parse_endpoint_syntax(record.canonical).host_literal
        node = published_node(record.details, chain_id, p2p_host)
        return node.node_id, node.port or derived_port
    if source == "discovered":
        node_id = pinned.discovered.get(op, {}).get(chain_id)
        if node_id is None:
            raise NodeIdError(
                f"the node of {record.moniker} on {chain_id} has not proved its id at its published endpoint "
                "yet (not yet probed, or the probe failed: see `peersync registry`)"
            )
        return node_id, derived_port
    if op in collided:  # upstream: a shared moniker derives one id for several validators
        raise NodeIdError(collided[op])
    return UPSTREAM_SCHEME.node_id(record.moniker, chain_id), derived_port


def moniker_collisions(records: list[ValidatorRecord]) -> dict[str, str]:
    """Operator address -> why its node id cannot be derived: under the upstream scheme a node id derives from
    the moniker (and the chain id), so validators sharing a moniker would get one node id (a squatter would
    take over another's entry). Each of them is refused, with the others named."""
    by_moniker: dict[str, list[str]] = {}
    for record in records:
        by_moniker.setdefault(record.moniker, []).append(record.operator_address)
    return {
        op: f"moniker {moniker!r} is also used by {', '.join(o for o in ops if o != op)}: its upstream node id "
        "cannot be told apart, so no peer entry is written for it"
        for moniker, ops in by_moniker.items()
        if len(ops) > 1
        for op in ops
    }
