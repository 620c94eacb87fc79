"""Derivations shared with the upstream monitor (roylee17/monitor), so clusters run by either interoperate.

Pure functions, no I/O. See reference/chain-wire-formats.md §4 and reference/test-vectors.md.
"""

from __future__ import annotations

import hashlib

import nacl.signing
from pydantic import BaseModel, ConfigDict

NODE_KEY_PREFIX = "ics-consumer-"
RESERVED_PORTS = frozenset({3000, 5432, 6379, 8080, 27017})
FALLBACK_P2P_PORT = 26756
FALLBACK_RPC_PORT = 26757
_BASES = {"p2p": 26656, "rpc": 26657, "grpc": 9090, "grpc_web": 9091}


class ConsumerPorts(BaseModel):
    """The ports a consumer chain's nodes listen on, derived from its chain id."""

    model_config = ConfigDict(frozen=True)

    p2p: int
    rpc: int
    grpc: int | None
    grpc_web: int | None


def node_id_from_pubkey(pubkey: bytes) -> str:
    """CometBFT node id: lower-case hex of sha256(ed25519 pubkey)[:20]."""
    if len(pubkey) != 32:
        raise ValueError(f"an ed25519 public key has 32 bytes, got {len(pubkey)}")
    return hashlib.sha256(pubkey).digest()[:20].hex()


def upstream_node_seed(moniker: str, chain_id: str) -> bytes:
    """The ed25519 seed upstream derives: GenPrivKeyFromSecret(sha256(seed_str)) hashes once more."""
    secret = hashlib.sha256(f"{NODE_KEY_PREFIX}{moniker}-{chain_id}".encode()).digest()
    return hashlib.sha256(secret).digest()


def upstream_node_pubkey(moniker: str, chain_id: str) -> bytes:
    return bytes(nacl.signing.SigningKey(upstream_node_seed(moniker, chain_id)).verify_key)


def upstream_node_id(moniker: str, chain_id: str) -> str:
    """Node id of `moniker`'s node on `chain_id` under the upstream scheme (public data only)."""
    return node_id_from_pubkey(upstream_node_pubkey(moniker, chain_id))


def _port_ok(port: int) -> bool:
    return 1024 <= port <= 65535 and port not in RESERVED_PORTS


def upstream_ports(chain_id: str) -> ConsumerPorts:
    """Upstream CalculatePorts: base + 100 + 10*off with off = BE uint64(sha256(chain_id)[:8]) % 1000.

    Upstream refuses the whole set when any port is reserved and falls back to p2p 26756; the RPC port
    falls back alike to 26757 and the gRPC ports are then unknown.
    """
    off = int.from_bytes(hashlib.sha256(chain_id.encode()).digest()[:8], "big") % 1000
    ports = {name: base + 100 + off * 10 for name, base in _BASES.items()}
    if all(_port_ok(p) for p in ports.values()):
        return ConsumerPorts(**ports)
    return ConsumerPorts(p2p=FALLBACK_P2P_PORT, rpc=FALLBACK_RPC_PORT, grpc=None, grpc_web=None)
