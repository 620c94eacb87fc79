"""The vectors of reference/test-vectors.md for addresses and the upstream-monitor derivations."""

from __future__ import annotations

import base64
import hashlib

import nacl.signing
import pytest

from core.addresses import AddressError, consensus_address_bytes, decode, valcons_address
from core.upstream import (
    FALLBACK_P2P_PORT,
    FALLBACK_RPC_PORT,
    node_id_from_pubkey,
    upstream_node_id,
    upstream_ports,
)


@pytest.mark.parametrize(
    ("pubkey_b64", "valcons"),
    [
        (
            "9tK9IT+FPdf2qm+5c2qaxi10sWP+3erWTKgftn2PaQM=",
            "cosmosvalcons1qqqqrezrl53hujmpdch6d805ac75n220ku09rl",
        ),
        (
            "rblUWQSomA8pUbGVINfs3ZEzL0oWzoG6+KAiutXJvuY=",
            "cosmosvalcons1l9h92mefd9mandh48enl2wgdas23kg8l0l05hp",
        ),
    ],
)
def test_valcons_from_consensus_pubkey(pubkey_b64: str, valcons: str) -> None:
    assert valcons_address(base64.b64decode(pubkey_b64)) == valcons


def test_cometbft_validator_address_is_the_same_bytes_upper_hex() -> None:
    pubkey = base64.b64decode("rblUWQSomA8pUbGVINfs3ZEzL0oWzoG6+KAiutXJvuY=")
    assert consensus_address_bytes(pubkey).hex().upper() == "F96E556F296977D9B6F53E67F5390DEC151B20FF"


def test_amino_prefixed_consensus_pubkey_decodes_to_the_key() -> None:
    data = decode(
        "cosmosvalconspub1zcjduepq7mft6gfls57a0a42d7uhx656cckhfvtrlmw744jv4q0mvlv0dypskehfk8",
        "cosmosvalconspub",
    )
    assert data[:5].hex() == "1624de6420"
    assert data[5:] == base64.b64decode("9tK9IT+FPdf2qm+5c2qaxi10sWP+3erWTKgftn2PaQM=")


def test_second_amino_pubkey_maps_to_its_valcons() -> None:
    data = decode(
        "cosmosvalconspub1zcjduepqe93asg05nlnj30ej2pe3r8rkeryyuflhtfw3clqjphxn4j3u27msrr63nk",
        "cosmosvalconspub",
    )
    assert valcons_address(data[5:]) == "cosmosvalcons1qq92t2l4jz5pt67tmts8ptl4p0jhr6utx5xa8y"


def test_decode_refuses_the_wrong_prefix() -> None:
    with pytest.raises(AddressError, match="expected 'cosmosvaloper'"):
        decode("cosmosvalcons1qqqqrezrl53hujmpdch6d805ac75n220ku09rl", "cosmosvaloper")


def test_cometbft_node_id_vector() -> None:
    key = base64.b64decode(
        "EVkqJO/jIXp3rkASXfh9YnyToYXRXhBr6g9cQVxPFnQBP/5povV4HTjvsy530kybxKHwEi85iU8YL0qQhSYVoQ=="
    )
    seed, pub = key[:32], key[32:]
    assert bytes(nacl.signing.SigningKey(seed).verify_key) == pub
    assert node_id_from_pubkey(pub) == "a3258dcbf45dca0df052981870f2d1441a36d145"


def test_ed25519_rfc8032_test_1() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert bytes(nacl.signing.SigningKey(seed).verify_key).hex() == pub


def test_node_id_needs_a_32_byte_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        node_id_from_pubkey(b"\x00" * 33)


def test_upstream_node_id_alice_consumer_1() -> None:
    assert upstream_node_id("alice", "consumer-1") == "738aadf42c14e9f8ed81d8c3f3c82ce9f53f3eb5"


def test_upstream_node_id_depends_on_moniker_and_chain() -> None:
    assert upstream_node_id("bob", "consumer-1") != upstream_node_id("alice", "consumer-1")
    assert upstream_node_id("alice", "consumer-2") != upstream_node_id("alice", "consumer-1")


def test_upstream_ports_consumer_1() -> None:
    ports = upstream_ports("consumer-1")
    assert (ports.p2p, ports.rpc, ports.grpc, ports.grpc_web) == (28746, 28747, 11180, 11181)


def _offset(chain_id: str) -> int:
    return int.from_bytes(hashlib.sha256(chain_id.encode()).digest()[:8], "big") % 1000


def test_consumer_1_offset_is_199() -> None:
    assert _offset("consumer-1") == 199


def test_reserved_port_falls_back_like_upstream() -> None:
    # off = 26 puts the RPC port on 27017 (reserved), so upstream refuses the set and uses 26756.
    chain_id = next(f"chain-{i}" for i in range(100_000) if _offset(f"chain-{i}") == 26)
    ports = upstream_ports(chain_id)
    assert (ports.p2p, ports.rpc, ports.grpc, ports.grpc_web) == (
        FALLBACK_P2P_PORT,
        FALLBACK_RPC_PORT,
        None,
        None,
    )
    assert ports.p2p == 26756
