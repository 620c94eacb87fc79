"""core/merlin.py against published vectors: keccak-f[1600], STROBE-128 and Merlin transcripts."""

from __future__ import annotations

import hashlib

import pytest

from core.merlin import Strobe128, Transcript, keccak_f1600


def test_keccak_f_of_the_zero_state() -> None:
    # The Keccak team's KeccakF-1600-IntermediateValues.txt, "State after permutation" of the all-zero state:
    # its first two lanes.
    state = bytearray(200)
    keccak_f1600(state)
    assert state[:8][::-1].hex() == "f1258f7940e1dde7"
    assert state[8:16][::-1].hex() == "84d5ccf933c0478a"


def sha3_256(message: bytes) -> bytes:
    """SHA3-256 built as FIPS 202 specifies it, on our permutation (rate 136, suffix 0x06, final 0x80)."""
    rate = 136
    padded = bytearray(message + b"\x06" + b"\x00" * (-(len(message) + 1) % rate))
    padded[-1] |= 0x80
    state = bytearray(200)
    for start in range(0, len(padded), rate):
        for i, byte in enumerate(padded[start : start + rate]):
            state[i] ^= byte
        keccak_f1600(state)
    return bytes(state[:32])


@pytest.mark.parametrize("message", [b"", b"abc", bytes(range(256)) * 3])
def test_keccak_f_makes_the_standard_sha3(message: bytes) -> None:
    # hashlib's SHA3 (FIPS 202) over the same permutation: every lane, every round, several blocks.
    assert sha3_256(message) == hashlib.sha3_256(message).digest()


def test_strobe_sanity_vector() -> None:
    # oasisprotocol/curve25519-voi internal/strobe/strobe_test.go TestStrobeSanity (vectors generated with
    # mimoo/StrobeGo): meta-AD over more than a block, KEY, a clone, AD continued with `more`, PRF.
    data = bytes(i & 0xFF for i in range(1024))
    strobe = Strobe128(b"test-strobe-sanity")
    strobe.meta_ad(data, more=False)
    strobe.key(b"test-strobe-sanity-key", more=False)
    twin = strobe.clone()
    strobe.ad(data, more=False)
    strobe.ad(data, more=True)
    assert strobe.prf(64, more=False).hex() == (
        "c4728cdd0361684d643a44221d16dc4677c62ed74a7f103635bd9cb6f3cc11bd"
        "d8405b105cd7de36f800dda96ea52c6adab88225c44faba4281dcdf84b2f3454"
    )
    assert twin.prf(16, more=False).hex() == "16671f5f3603853adaf55614387d5604"


def test_strobe_refuses_to_continue_a_different_operation() -> None:
    strobe = Strobe128(b"proto")
    strobe.ad(b"x", more=False)
    with pytest.raises(ValueError, match="continued op"):
        strobe.meta_ad(b"y", more=True)


def test_simple_transcript() -> None:
    # dalek-cryptography/merlin src/transcript.rs tests::equivalence_simple; the challenge it prints is the
    # vector in curve25519-voi primitives/merlin/merlin_test.go TestSimpleTranscript.
    transcript = Transcript(b"test protocol")
    transcript.append_message(b"some label", b"some data")
    assert transcript.challenge_bytes(b"challenge", 32).hex() == (
        "d5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615"
    )


def test_complex_transcript() -> None:
    # dalek-cryptography/merlin tests::equivalence_complex (1024-byte messages wrap the sponge; 32 rounds of
    # challenges fed back); the final challenge as in curve25519-voi merlin_test.go TestComplexTranscript.
    transcript = Transcript(b"test protocol")
    transcript.append_message(b"step1", b"some data")
    challenge = b""
    for _ in range(32):
        challenge = transcript.challenge_bytes(b"challenge", 32)
        transcript.append_message(b"bigdata", bytes([99]) * 1024)
        transcript.append_message(b"challengedata", challenge)
    assert challenge.hex() == "a8c933f54fae76e3f9bea93648c1308e7dfa2152dd51674ff3ca438351cf003c"


def test_a_clone_is_independent() -> None:
    transcript = Transcript(b"test protocol")
    transcript.append_message(b"some label", b"some data")
    twin = transcript.clone()
    twin.append_message(b"other", b"data")
    assert transcript.challenge_bytes(b"challenge", 32).hex().startswith("d5a21972")
    assert not twin.challenge_bytes(b"challenge", 32).hex().startswith("d5a21972")
