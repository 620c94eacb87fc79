"""Canonical peer strings, the peer-set hash and the upstream peer derivation."""

from __future__ import annotations

import hashlib
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from peer_strategies import HOSTILE_CHARS, PROPERTY, PROPERTY_FEW, WHITELIST, endpoints, peers
from pydantic import ValidationError

from core.endpoint import Endpoint, EndpointError, parse_endpoint
from core.peers import (
    UPSTREAM_SCHEME,
    Peer,
    PeerError,
    canonical_peers,
    parse_peer,
    peer_for,
    peer_set_hash,
    render_peer_list,
)
from core.policy import STRICT, EndpointPolicy

ALICE_C1 = "738aadf42c14e9f8ed81d8c3f3c82ce9f53f3eb5"
ID_A = "a3258dcbf45dca0df052981870f2d1441a36d145"
RANGE = "1\N{EN DASH}65535"


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        (f"{ALICE_C1}@203.0.113.7:28746", f"{ALICE_C1}@203.0.113.7:28746"),
        (f"tcp://{ALICE_C1}@203.0.113.7:28746", f"{ALICE_C1}@203.0.113.7:28746"),
        (f"{ALICE_C1.upper()}@Node.Example.com:26656", f"{ALICE_C1}@node.example.com:26656"),
        (f"{ID_A}@[2001:DB8:0::1]:26656", f"{ID_A}@[2001:db8::1]:26656"),
        (f"{ID_A}@10.0.0.5:26656", f"{ID_A}@10.0.0.5:26656"),  # grammar only: private is fine here
    ],
)
def test_parse_peer_canonicalises(text: str, rendered: str) -> None:
    assert parse_peer(text).render() == rendered


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("X" * 40 + "@1.2.3.4:26656", f"node id '{'X' * 40}' is not 40 hex digits"),
        (ALICE_C1[:-1] + "@1.2.3.4:26656", f"node id '{ALICE_C1[:-1]}' is not 40 hex digits"),
        (
            f"{ALICE_C1}@1.2.3.4;rm -rf /:26656",
            "host '1.2.3.4;rm -rf /' contains ';' which is not allowed in a host name",
        ),
        (f"{ALICE_C1}@1.2.3.4", f"peer '{ALICE_C1}@1.2.3.4' has no port"),
        (f"{ALICE_C1}@1.2.3.4:65536", f"port 65536 is outside {RANGE}"),
        ("1.2.3.4:26656", "peer '1.2.3.4:26656' must be <node id>@<host>:<port> with exactly one '@'"),
        (
            f"{ALICE_C1}@x@1.2.3.4:1",
            f"peer '{ALICE_C1}@x@1.2.3.4:1' must be <node id>@<host>:<port> with exactly one '@'",
        ),
        (f"udp://{ALICE_C1}@1.2.3.4:1", f"peer 'udp://{ALICE_C1}@1.2.3.4:1' has a scheme other than tcp://"),
        (f" {ALICE_C1}@1.2.3.4:1", f"node id ' {ALICE_C1}' is not 40 hex digits"),
    ],
)
def test_parse_peer_refuses(text: str, reason: str) -> None:
    with pytest.raises(PeerError if "node id" in reason or "peer" in reason else EndpointError) as caught:
        parse_peer(text)
    assert caught.value.reason == reason


def test_loopback_peer_is_refused_by_policy() -> None:
    # test-vectors.md: host 127.0.0.1 must be refused (by policy, which guards every new peer).
    peer = parse_peer(f"{ALICE_C1}@127.0.0.1:26656")
    with pytest.raises(EndpointError, match=r"127\.0\.0\.1 is a loopback address"):
        parse_endpoint(peer.endpoint.render(), STRICT)


def test_peer_model_revalidates_its_fields() -> None:
    for fields in (
        {"node_id": ALICE_C1.upper(), "host": "1.2.3.4", "port": 1},
        {"node_id": ALICE_C1, "host": "a;b", "port": 1},
        {"node_id": ALICE_C1, "host": "[2001:db8::1]", "port": 1},
        {"node_id": ALICE_C1, "host": "1.2.3.4", "port": 0},
        {"node_id": ALICE_C1, "host": "1.2.3.4\n[x]", "port": 1},
    ):
        with pytest.raises(ValidationError):
            Peer(**fields)


def test_peer_json_round_trip() -> None:
    peer = parse_peer(f"{ID_A}@[2606:4700::1]:26656")
    assert Peer.model_validate_json(peer.model_dump_json()) == peer
    assert peer.endpoint == Endpoint(host="2606:4700::1", port=26656, kind="ipv6")


def test_peer_set_hash_matches_the_kubernetes_reference_formula() -> None:
    texts = [f"{ID_A}@8.8.8.8:26656", f"{ALICE_C1}@1.1.1.1:28746"]
    expected = hashlib.sha256("\n".join(sorted(set(texts))).encode()).hexdigest()[:16]
    assert peer_set_hash(parse_peer(t) for t in texts) == expected
    assert peer_set_hash([]) == hashlib.sha256(b"").hexdigest()[:16]


def test_peer_set_hash_ignores_order_duplicates_and_spelling() -> None:
    a = f"{ID_A}@8.8.8.8:26656"
    b = f"{ALICE_C1}@node.example.com:28746"
    assert peer_set_hash([a, b]) == peer_set_hash([b, a, a])
    assert peer_set_hash([a, b]) == peer_set_hash(
        [f"tcp://{ID_A.upper()}@8.8.8.8:26656", b.replace("node", "NODE")]
    )
    assert peer_set_hash([a]) != peer_set_hash([a, b])


def test_peer_for_uses_the_upstream_scheme() -> None:
    endpoint = parse_endpoint("127.0.10.1:26656", EndpointPolicy.from_setting("127.0.10.0/24"))
    peer = peer_for("alice", endpoint, "consumer-1")
    # The published port is ignored in favour of the consumer's computed P2P port, as upstream does.
    assert peer.render() == f"{ALICE_C1}@127.0.10.1:28746"


def test_peer_for_accepts_another_scheme() -> None:
    class FixedPort:
        def node_id(self, moniker: str, chain_id: str) -> str:
            return UPSTREAM_SCHEME.node_id(moniker, chain_id)

        def p2p_port(self, chain_id: str, endpoint: Endpoint) -> int:
            return endpoint.port or 26656

    endpoint = parse_endpoint("[2606:4700::1]:30000", STRICT)
    assert (
        peer_for("alice", endpoint, "consumer-1", FixedPort()).render() == f"{ALICE_C1}@[2606:4700::1]:30000"
    )


def test_render_peer_list_is_sorted_and_deduplicated() -> None:
    a, b = parse_peer(f"{ID_A}@8.8.8.8:26656"), parse_peer(f"{ALICE_C1}@1.1.1.1:28746")
    assert render_peer_list([a, b, a]) == f"{b},{a}"
    assert canonical_peers([a, b, a]) == [b, a]
    assert render_peer_list([]) == ""


# ---------------------------------------------------------------- properties


@PROPERTY
@given(peers())
def test_parse_of_render_is_identity(peer: Peer) -> None:
    assert parse_peer(peer.render()) == peer
    assert parse_peer("tcp://" + peer.render()) == peer


@PROPERTY
@given(peers())
def test_rendered_peer_is_whitelisted_and_has_one_at(peer: Peer) -> None:
    rendered = peer.render()
    assert WHITELIST.fullmatch(rendered)
    assert rendered.count("@") == 1
    assert "," not in rendered


@PROPERTY_FEW
@given(st.lists(peers(), max_size=8), st.randoms(use_true_random=False))
def test_peer_set_hash_is_order_and_duplicate_insensitive(items: list[Peer], random: Random) -> None:
    shuffled = items + items[:2]
    random.shuffle(shuffled)
    assert peer_set_hash(shuffled) == peer_set_hash(items)
    assert len(peer_set_hash(items)) == 16


@PROPERTY
@given(st.text(alphabet=HOSTILE_CHARS + "tcp/", max_size=60) | st.text(max_size=60))
def test_anything_that_parses_as_a_peer_renders_whitelisted(text: str) -> None:
    try:
        peer = parse_peer(text)
    except EndpointError:
        return
    assert WHITELIST.fullmatch(peer.render())
    assert parse_peer(peer.render()) == peer


@PROPERTY
@given(st.text(min_size=1, max_size=70), endpoints())
def test_peer_for_any_moniker_is_a_valid_peer(moniker: str, endpoint: Endpoint) -> None:
    peer = peer_for(moniker, endpoint, "consumer-1")
    assert parse_peer(peer.render()) == peer
    assert peer.port == 28746
