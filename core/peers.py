"""Canonical CometBFT peer strings `<node id>@<host>:<port>`, the peer-set hash, and how a validator's
endpoint becomes a peer on a consumer chain. Pure.

Decisions where the spec was silent:
- `parse_peer` accepts an upper-case node id and lower-cases it: CometBFT hex-decodes ids, so the case
  names the same node, but ids are compared as strings, so only lower case is ever emitted.
- `parse_peer` checks the grammar only, not the public-address policy: it reads ConfigMaps, which may
  legitimately hold an operator's private sentries. New peers come from policy-checked endpoints.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from core.endpoint import Endpoint, EndpointError, HostKind, parse_endpoint_syntax, parse_host, show
from core.upstream import upstream_node_id, upstream_ports

NODE_ID_HEX_DIGITS = 40
_NODE_ID = re.compile(r"[0-9a-f]{40}")
_ANY_CASE_NODE_ID = re.compile(r"[0-9a-fA-F]{40}")
_TCP_SCHEME = "tcp://"


class PeerError(EndpointError):
    """Text that is not a well-formed peer string."""


class Peer(BaseModel):
    """A peer in canonical form; constructing one re-checks the grammar."""

    model_config = ConfigDict(frozen=True)

    node_id: StrictStr
    host: StrictStr
    port: int = Field(ge=1, le=65535, strict=True)

    @model_validator(mode="after")
    def _canonical(self) -> Peer:
        if not _NODE_ID.fullmatch(self.node_id):
            raise ValueError(
                f"node id {show(self.node_id)} is not {NODE_ID_HEX_DIGITS} lower-case hex digits"
            )
        Endpoint(host=self.host, port=self.port, kind=self.kind)
        return self

    @property
    def kind(self) -> HostKind:
        # ':' only ever appears in an IPv6 host; otherwise the grammar tells IPv4 from DNS.
        return "ipv6" if ":" in self.host else parse_host(self.host)[1]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(host=self.host, port=self.port, kind=self.kind)

    def render(self) -> str:
        # The fields were checked on construction; only an IPv6 host contains ':' and needs brackets.
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.node_id}@{host}:{self.port}"

    def __str__(self) -> str:
        return self.render()


def parse_peer(text: str) -> Peer:
    """`[tcp://]<node id>@<host>:<port>` into a canonical Peer (grammar only, see the module doc)."""
    address = text[len(_TCP_SCHEME) :] if text.startswith(_TCP_SCHEME) else text
    if "://" in address:
        raise PeerError(f"peer {show(text)} has a scheme other than tcp://")
    if address.count("@") != 1:
        raise PeerError(f"peer {show(text)} must be <node id>@<host>:<port> with exactly one '@'")
    node_id, endpoint_text = address.split("@")
    if not _ANY_CASE_NODE_ID.fullmatch(node_id):
        raise PeerError(f"node id {show(node_id)} is not {NODE_ID_HEX_DIGITS} hex digits")
    endpoint = parse_endpoint_syntax(endpoint_text)
    if endpoint.port is None:
        raise PeerError(f"peer {show(text)} has no port")
    return Peer(node_id=node_id.lower(), host=endpoint.host, port=endpoint.port)


def canonical_peers(peers: Iterable[Peer]) -> list[Peer]:
    """Deduplicated and sorted by their string: one order for one set, so writes are byte-stable."""
    return sorted(set(peers), key=Peer.render)


def render_peer_list(peers: Iterable[Peer]) -> str:
    """The comma list CometBFT's `persistent_peers` holds, in canonical order."""
    return ",".join(peer.render() for peer in canonical_peers(peers))


def peer_set_hash(peers: Iterable[Peer | str]) -> str:
    """sha256 of the sorted, deduplicated canonical peers joined by newlines; first 16 hex digits.

    Strings are parsed first, so differently written forms of the same peer hash alike.
    """
    parsed = (parse_peer(peer) if isinstance(peer, str) else peer for peer in peers)
    canonical = "\n".join(peer.render() for peer in canonical_peers(parsed))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class PeerScheme(Protocol):
    """How a validator's published endpoint becomes its node's peer on one consumer chain."""

    def node_id(self, moniker: str, chain_id: str) -> str: ...

    def p2p_port(self, chain_id: str, endpoint: Endpoint) -> int: ...


class UpstreamScheme:
    """roylee17/monitor's derivations (DESIGN.md invariant 12): node id from moniker and chain id, and
    the consumer's computed P2P port; the published port is ignored, as upstream does."""

    def node_id(self, moniker: str, chain_id: str) -> str:
        return upstream_node_id(moniker, chain_id)

    def p2p_port(self, chain_id: str, endpoint: Endpoint) -> int:
        return upstream_ports(chain_id).p2p


UPSTREAM_SCHEME: PeerScheme = UpstreamScheme()


def peer_for(moniker: str, endpoint: Endpoint, chain_id: str, scheme: PeerScheme = UPSTREAM_SCHEME) -> Peer:
    """The peer for a validator's node on `chain_id`. `endpoint` must already have passed the policy."""
    return Peer(
        node_id=scheme.node_id(moniker, chain_id),
        host=endpoint.host,
        port=scheme.p2p_port(chain_id, endpoint),
    )
