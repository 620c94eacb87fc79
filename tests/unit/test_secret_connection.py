"""core/secret_connection.py: CometBFT's key schedule vectors, a recorded real handshake replayed, and every
way a remote can fail to prove its key."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.bindings as sodium
import nacl.signing
import pytest

from core.secret_connection import (
    DATA_MAX,
    FRAME_SIZE,
    MIN_HANDSHAKE_BYTES,
    SEALED_FRAME_SIZE,
    BadSignatureError,
    FrameCipher,
    OversizeError,
    ProtocolError,
    SecretHandshake,
    challenge,
    delimited,
    derive_secrets,
    hello_message,
    hkdf_sha256,
)
from core.upstream import node_id_from_pubkey

RECORDING = json.loads((Path(__file__).parent / "data" / "cometbft_v0_38_26_handshake.json").read_text())
MAX = 8192


def side(seed: int, secret: int, max_bytes: int = MAX) -> SecretHandshake:
    return SecretHandshake(nacl.signing.SigningKey(bytes([seed]) * 32), bytes([secret]) * 32, max_bytes)


def test_hkdf_rfc5869_empty_salt() -> None:
    # RFC 5869 appendix A.3 (SHA-256, zero-length salt and info), the form Go's hkdf.New(.., nil, ..) takes.
    okm = hkdf_sha256(b"\x0b" * 22, b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


@pytest.mark.parametrize(
    "dh, least, recv, send",
    [
        # cometbft v0.38.26 p2p/conn/testdata/TestDeriveSecretsAndChallengeGolden.golden, lines 1-3
        # (columns: DH secret, local is least, receive key, send key; the 5th column is no longer used).
        (
            "9fe4a5a73df12dbd8659b1d9280873fe993caefec6b0ebc2686dd65027148e03",
            True,
            "80a83ad6afcb6f8175192e41973aed31dd75e3c106f813d986d9567a4865eb2f",
            "96362a04f628a0666d9866147326898bb0847b8db8680263ad19e6336d4eed9e",
        ),
        (
            "0716764b370d543fee692af03832c16410f0a56e4ddb79604ea093b10bb6f654",
            False,
            "84f2b1e8658456529a2c324f46c3406c3c6fecd5fbbf9169f60bed8956a8b03d",
            "cba357ae33d7234520d5742102a2a6cdb39b7db59c14a58fa8aadd310127630f",
        ),
        (
            "358dd73aae2c5b7b94b57f950408a3c681e748777ecab2063c8ca51a63588fa8",
            False,
            "c2e2f664c8ee561af8e1e30553373be4ae23edecc8c6bd762d44b2afb7f2a037",
            "d1563f428ac1c023c15d8082b2503157fe9ecbde4fb3493edd69ebc299b4970c",
        ),
    ],
)
def test_derive_secrets_golden(dh: str, least: bool, recv: str, send: str) -> None:
    assert derive_secrets(bytes.fromhex(dh), least) == (bytes.fromhex(recv), bytes.fromhex(send))


def replayer() -> SecretHandshake:
    return SecretHandshake(
        nacl.signing.SigningKey(bytes.fromhex(RECORDING["probe_ed25519_seed"])),
        bytes.fromhex(RECORDING["probe_x25519_secret"]),
        MAX,
    )


def test_a_recorded_real_handshake_replays() -> None:
    """Recorded from a real cometbft v0.38.26 node (tests/real/test_p2p_identity.py): with our keys fixed,
    we send byte for byte what that node accepted, and prove the id it reports in /status."""
    node_sent = bytes.fromhex(RECORDING["node_sent"])
    handshake = replayer()
    sent = handshake.hello()
    sent += handshake.receive(node_sent[:10])  # in pieces, as a socket delivers them
    assert handshake.proven is None
    sent += handshake.receive(node_sent[10:])
    assert sent.hex() == RECORDING["probe_sent"]
    assert handshake.proven is not None and handshake.proven.node_id == RECORDING["node_id"]
    assert node_id_from_pubkey(handshake.proven.pubkey) == RECORDING["node_id"]
    assert handshake.receive(b"the node's sealed NodeInfo follows") == b""  # not ours to read


def test_a_tampered_recording_does_not_decrypt() -> None:
    node_sent = bytearray.fromhex(RECORDING["node_sent"])
    node_sent[100] ^= 1  # inside the sealed auth frame
    with pytest.raises(ProtocolError, match="does not decrypt"):
        replayer().receive(bytes(node_sent))


def test_another_probe_key_cannot_reuse_the_recording() -> None:
    """The node's frame is bound to the ephemeral keys: replayed at another probe it is garbage."""
    with pytest.raises(ProtocolError, match="does not decrypt"):
        side(1, 2).receive(bytes.fromhex(RECORDING["node_sent"]))


def exchange(a: SecretHandshake, b: SecretHandshake) -> None:
    to_b, to_a = a.hello(), b.hello()
    to_b, to_a = a.receive(to_a), b.receive(to_b)
    a.receive(to_a)
    b.receive(to_b)


def test_two_sides_prove_each_other() -> None:
    a, b = side(1, 3), side(2, 4)
    exchange(a, b)
    key = lambda seed: bytes(nacl.signing.SigningKey(bytes([seed]) * 32).verify_key)  # noqa: E731
    assert a.proven is not None and a.proven.node_id == node_id_from_pubkey(key(2))
    assert b.proven is not None and b.proven.node_id == node_id_from_pubkey(key(1))


def test_a_remote_signing_with_another_key_is_refused() -> None:
    liar = nacl.signing.SigningKey(b"\x07" * 32)
    claimed = nacl.signing.SigningKey(b"\x08" * 32).verify_key
    liar.verify_key = claimed  # claims key 8, signs with key 7
    honest = side(1, 3)
    with pytest.raises(BadSignatureError, match=node_id_from_pubkey(bytes(claimed))):
        exchange(honest, SecretHandshake(liar, b"\x05" * 32, MAX))
    assert honest.proven is None


def remote_session(local: SecretHandshake, remote_secret: bytes) -> tuple[bytes, bytes, bytes]:
    """(the remote's hello, the key it seals with, the challenge), computed as the remote would: to forge."""
    local_pub = local.hello()[3:]  # delimited BytesValue: 3 bytes of framing, then the key
    remote_pub = sodium.crypto_scalarmult_base(remote_secret)
    dh = sodium.crypto_scalarmult(remote_secret, local_pub)
    _, send_key = derive_secrets(dh, remote_pub < local_pub)
    return hello_message(remote_pub), send_key, challenge(*sorted((local_pub, remote_pub)), dh)


def sealed_by_remote(local: SecretHandshake, remote_secret: bytes, frame: bytes) -> bytes:
    """The remote's hello and one raw 1028-byte frame sealed with the session's real key and first nonce."""
    hello, send_key, _ = remote_session(local, remote_secret)
    return hello + sodium.crypto_aead_chacha20poly1305_ietf_encrypt(frame, None, bytes(12), send_key)


def test_an_oversize_frame_is_refused() -> None:
    local = side(1, 3)
    frame = (DATA_MAX + 1).to_bytes(4, "little") + bytes(DATA_MAX)
    with pytest.raises(OversizeError, match=f"declares {DATA_MAX + 1} data bytes"):
        local.receive(sealed_by_remote(local, b"\x06" * 32, frame))


def test_a_key_other_than_ed25519_is_refused() -> None:
    local = side(1, 3)
    secp = b"\x0a\x23" + b"\x12\x21" + b"\x02" * 33  # PublicKey{secp256k1: 33 bytes}
    message = delimited(secp + b"\x12\x40" + bytes(64))
    frame = len(message).to_bytes(4, "little") + message.ljust(DATA_MAX, b"\x00")
    with pytest.raises(ProtocolError, match=r"not ed25519 \(got secp256k1\)"):
        local.receive(sealed_by_remote(local, b"\x06" * 32, frame))


def test_an_auth_message_may_span_frames() -> None:
    """A message larger than one frame (CometBFT's reader accepts it) is reassembled before parsing."""
    remote_key = nacl.signing.SigningKey(b"\x09" * 32)
    local = side(1, 3)
    hello, send_key, mac = remote_session(local, b"\x06" * 32)
    local.receive(hello)
    padding = b"\x1a\x80\x08" + bytes(1024)  # an unknown field 3 of 1024 bytes: skipped
    signature = remote_key.sign(mac).signature
    message = delimited(
        b"\x0a\x22\x0a\x20" + bytes(remote_key.verify_key) + b"\x12\x40" + signature + padding
    )
    sealed = FrameCipher(send_key).seal(message)
    assert len(sealed) == 2 * SEALED_FRAME_SIZE
    local.receive(sealed)
    assert local.proven is not None and local.proven.pubkey == bytes(remote_key.verify_key)


@pytest.mark.parametrize(
    "hello, error",
    [
        (hello_message(bytes(31)), "ephemeral key has 31 bytes"),
        (hello_message(bytes(32)), "low-order point"),
        (b"HTTP/1.1 400 Bad Request\r\n" + bytes(60), "not protobuf"),
        (b"\xff" * 11, "past 10 bytes"),
    ],
)
def test_a_bad_hello_is_refused(hello: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        side(1, 3).receive(hello)


def test_the_byte_budget_holds() -> None:
    local = side(1, 3, max_bytes=MIN_HANDSHAKE_BYTES)
    local.receive(side(2, 4).hello() + bytes(FRAME_SIZE))  # 35 + 1028: still within the budget
    with pytest.raises(OversizeError, match=f"more than {MIN_HANDSHAKE_BYTES} bytes"):
        local.receive(bytes(17))
    with pytest.raises(OversizeError, match="announced a 1000000-byte message"):
        side(1, 3).receive(delimited(bytes(1)).replace(b"\x01", b"\xc0\x84\x3d", 1))


@pytest.mark.parametrize(
    "secret, max_bytes, error",
    [(bytes(31), MAX, "32 bytes, got 31"), (bytes(32), MIN_HANDSHAKE_BYTES - 1, "below the 1079")],
)
def test_bad_parameters_are_refused(secret: bytes, max_bytes: int, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SecretHandshake(nacl.signing.SigningKey(bytes(32)), secret, max_bytes)
