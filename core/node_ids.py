"""Where a consumer namespace takes its peers' node ids from (annotation `peersync.io/node-ids`), and the
strict grammar of the node ids a validator publishes in its `details`. Pure.

Sources:
- `upstream` (default): derived from moniker and chain id (core/upstream.py), as roylee17/monitor does;
  anyone can derive these keys, and colliding monikers cannot be told apart.
- `published`: the validator publishes its nodes' ids in `details`, next to its `p2p=` endpoint.
- `discovered`: the id the node at the published endpoint proved in the authenticated handshake, learned
  by the registry (RegistryEntry.discovered) and handed to syncs in the snapshot.

Published grammar (one whitespace-separated token of `details`, at most one per details):

    p2p-ids=<entry>[;<entry>...]
    entry   = [<chain-id>=]<node-id>@<host>[:<port>]

- `<node-id>` is exactly 40 lower-case hex digits (what CometBFT prints; upper case is refused, not folded).
- `<host>[:<port>]` is core/endpoint.py's grammar; `<host>` must name the same host as the `p2p=` endpoint
  of the same details (one published address, never two that disagree). `<port>`, when given, is the
  node's P2P port on that chain; without it the upstream-derived port of the chain is used.
- An entry without `<chain-id>` is the default for every consumer (at most one); an entry with one applies
  to that chain only and wins over the default (each chain at most once).
- `<chain-id>` is 1-50 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
Anything else in a `p2p-ids=` token makes all of it invalid (the reason names the entry), as for `p2p=`.
Example (171 bytes): `p2p=1.2.3.4 p2p-ids=consumer-1=<40 hex>@1.2.3.4:26656;<40 hex>@1.2.3.4`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.contracts import EndpointStatus, ProvedNodeId, ValidatorRecord
from core.endpoint import Endpoint, EndpointError, parse_endpoint_syntax, show
from core.upstream import upstream_ports

NodeIdSource = Literal["upstream", "published", "discovered"]
NODE_ID_SOURCES: tuple[NodeIdSource, ...] = ("upstream", "published", "discovered")
ANNOTATION_NODE_IDS = "peersync.io/node-ids"
DEFAULT_SOURCE: NodeIdSource = "upstream"

PUBLISHED_PREFIX = "p2p-ids="
MAX_CHAIN_ID = 50
_NODE_ID = re.compile(r"[0-9a-f]{40}")
_CHAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")
_WHITESPACE = re.compile(r"[ \t\n\r\v\f]+")


class NodeIdError(ValueError):
    """No usable node id; `reason` says why in one sentence safe to print."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PublishedNode(BaseModel):
    """One published entry: the node id, its host (canonical, IPv6 bracketed) and port (None: derived)."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    host: str
    port: int | None = None


class PublishedIds(BaseModel):
    """A parsed `p2p-ids=` token."""

    model_config = ConfigDict(frozen=True)

    default: PublishedNode | None = None
    chains: dict[str, PublishedNode] = {}

    def for_chain(self, chain_id: str) -> PublishedNode | None:
        return self.chains.get(chain_id, self.default)


def check_node_id(text: str) -> str:
    if not _NODE_ID.fullmatch(text):
        raise NodeIdError(f"node id {show(text)} is not 40 lower-case hex digits")
    return text


def _entry(text: str) -> tuple[str | None, PublishedNode]:
    chain_id = None
    head, at, endpoint_text = text.partition("@")
    if not at:
        raise NodeIdError(f"entry {show(text)} is not [<chain-id>=]<node-id>@<host>[:<port>]")
    if "=" in head:
        chain_id, _, head = head.partition("=")
        if not _CHAIN_ID.fullmatch(chain_id):
            raise NodeIdError(f"entry {show(text)}: chain id {show(chain_id)} is not 1-50 of [A-Za-z0-9._-]")
    node_id = check_node_id(head)
    try:
        endpoint = parse_endpoint_syntax(endpoint_text)
    except EndpointError as exc:
        raise NodeIdError(f"entry {show(text)}: {exc.reason}") from None
    return chain_id, PublishedNode(node_id=node_id, host=endpoint.host_literal, port=endpoint.port)


def parse_published(token: str) -> PublishedIds:
    """The value of one `p2p-ids=` token (without the prefix); NodeIdError names what is wrong."""
    if not token:
        raise NodeIdError(f"{PUBLISHED_PREFIX} is empty")
    default: PublishedNode | None = None
    chains: dict[str, PublishedNode] = {}
    for text in token.split(";"):
        chain_id, node = _entry(text)
        if chain_id is None:
            if default is not None:
                raise NodeIdError(f"{PUBLISHED_PREFIX} has two entries without a chain id")
            default = node
        elif chain_id in chains:
            raise NodeIdError(f"{PUBLISHED_PREFIX} names chain {show(chain_id)} twice")
        else:
            chains[chain_id] = node
    return PublishedIds(default=default, chains=chains)


def published_ids(details: str | None) -> PublishedIds | None:
    """The validator's published ids; None when its details carry no `p2p-ids=` token."""
    tokens = [t for t in _WHITESPACE.split(details or "") if t.startswith(PUBLISHED_PREFIX)]
    if not tokens:
        return None
    if len(tokens) > 1:
        raise NodeIdError(f"details carry {len(tokens)} {PUBLISHED_PREFIX} tokens; publish one")
    return parse_published(tokens[0][len(PUBLISHED_PREFIX) :])


def published_node(details: str | None, chain_id: str, p2p_host: str | None) -> PublishedNode:
    """The node a validator published for `chain_id`. `p2p_host` is the host of its valid `p2p=` endpoint
    (IPv6 bracketed), None when it has none. NodeIdError with the reason when there is no usable id."""
    try:
        found = published_ids(details)
    except NodeIdError as exc:
        raise NodeIdError(f"published node ids are invalid: {exc.reason}") from None
    node = found.for_chain(chain_id) if found is not None else None
    if node is None:
        raise NodeIdError(f"no node id published for chain {chain_id} ({PUBLISHED_PREFIX} in details)")
    if p2p_host is not None and node.host != p2p_host:
        raise NodeIdError(
            f"the node id published for chain {chain_id} is for host {node.host}, but p2p= names {p2p_host}"
        )
    return node


def node_id_source(annotation: str | None) -> NodeIdSource:
    """The namespace's source; ValueError names the annotation when its value is not one of the sources."""
    if annotation is None:
        return DEFAULT_SOURCE
    for source in NODE_ID_SOURCES:
        if annotation == source:
            return source
    raise ValueError(
        f"annotation {ANNOTATION_NODE_IDS}: {show(annotation)} is not one of {', '.join(NODE_ID_SOURCES)}"
    )


# ---- `discovered`: what the registry asks the authenticated probe --------------------------------------


def proof_fingerprint(proof: ProvedNodeId) -> str:
    """What the registry sends back to the refresh for each proof it holds: a proved id is re-probed only when
    the endpoint moves; a failure is re-probed at every refresh, and reported only when its reason changes."""
    if proof.node_id is not None:
        return f"{proof.endpoint} {proof.node_id}"
    return f"{proof.endpoint} !{hashlib.sha256((proof.reason or '').encode()).hexdigest()[:8]}"


def proved_at(fingerprint: str | None, endpoint: str) -> bool:
    """True when `fingerprint` is a proved id at `endpoint` (nothing to probe again)."""
    if fingerprint is None:
        return False
    where, _, what = fingerprint.partition(" ")
    return where == endpoint and not what.startswith("!")


def discovery_targets(
    records: list[ValidatorRecord],
    opted_in: dict[str, list[str]],
    chains: set[str],
    local_validator: str | None,
) -> list[tuple[str, str, Endpoint]]:
    """(operator, chain id, endpoint to probe) for every opted-in validator but the local one of each chain
    in `chains` (those a namespace runs with node ids `discovered`): its published host, the chain's P2P port.
    Validators without a valid published endpoint have nothing to probe."""
    by_valcons = {r.valcons: r for r in records if r.valcons}
    targets = []
    for chain_id in sorted(chains):
        for valcons in opted_in.get(chain_id, []):
            record = by_valcons.get(valcons)
            if record is None or record.operator_address == local_validator:
                continue
            if record.status != EndpointStatus.VALID or not record.canonical:
                continue
            published = parse_endpoint_syntax(record.canonical)
            port = upstream_ports(chain_id).p2p
            endpoint = Endpoint(host=published.host, port=port, kind=published.kind)
            targets.append((record.operator_address, chain_id, endpoint))
    return targets
