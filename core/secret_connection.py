"""CometBFT's SecretConnection handshake (p2p/conn/secret_connection.go, v0.38), up to the authenticated key.

Pure and sans-I/O: a `SecretHandshake` is fed the bytes the remote sent and returns the bytes to send; the
caller owns the socket, the clock and the limits' enforcement on the wire. The protocol is symmetric, so
the same machine is the probe's client and the emulated nodes' server.

    both:  varint-delimited BytesValue{32-byte X25519 ephemeral key}
    both:  Merlin transcript over (lower key, upper key, DH secret) -> 32-byte challenge;
           HKDF-SHA256(DH secret) -> the two ChaCha20-Poly1305 keys, assigned by which key sorts lower
    both:  one sealed frame: varint-delimited AuthSigMessage{PublicKey{ed25519}, sign(challenge)}
    then:  the remote's signature verifies -> its node id is hex(sha256(ed25519 key)[:20])

What comes next in CometBFT (the NodeInfo exchange, then the reactors) is never sent nor read.
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.bindings as sodium
import nacl.exceptions
import nacl.signing
from pydantic import BaseModel, ConfigDict

from core.merlin import Transcript
from core.upstream import node_id_from_pubkey

DATA_MAX = 1024  # plaintext bytes per frame (dataMaxSize)
FRAME_SIZE = 4 + DATA_MAX  # little-endian u32 length + data, zero padded (totalFrameSize)
SEALED_FRAME_SIZE = FRAME_SIZE + 16  # + Poly1305 tag
KEY_AND_CHALLENGE_GEN = b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN"
TRANSCRIPT_LABEL = b"TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH"
_MAX_VARINT = 10
_HELLO_SIZE = 35  # what a well-behaved peer sends first: 1 + BytesValue(2 + 32)
MIN_HANDSHAKE_BYTES = _HELLO_SIZE + SEALED_FRAME_SIZE  # the least a remote must send to prove its key
_KEY_FIELDS = {1: "ed25519", 2: "secp256k1", 4: "mldsa65"}  # tendermint.crypto.PublicKey (v0.38.26)


class HandshakeError(Exception):
    """The remote did not prove a node key; `reason` says why, in a sentence an operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProtocolError(HandshakeError):
    """The remote's bytes are not the SecretConnection protocol (a different service, or a broken peer)."""


class OversizeError(HandshakeError):
    """The remote sent more than the handshake needs or allows: a frame, a message or the byte budget."""


class BadSignatureError(HandshakeError):
    """The remote sent a key but could not sign our challenge with it: it does not hold that key."""


class Proven(BaseModel):
    model_config = ConfigDict(frozen=True)

    pubkey: bytes
    node_id: str


# --- protobuf, the few pieces the handshake needs -------------------------------------------------------


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_uvarint(buf: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """(value, next offset), or None while the buffer ends inside the varint."""
    value = 0
    for i in range(_MAX_VARINT):
        if at + i >= len(buf):
            return None
        byte = buf[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, at + i + 1
    raise ProtocolError("a length prefix runs past 10 bytes: not a protobuf varint")


def _field(number: int, payload: bytes) -> bytes:
    return _uvarint(number << 3 | 2) + _uvarint(len(payload)) + payload


def delimited(message: bytes) -> bytes:
    return _uvarint(len(message)) + message


def _fields(message: bytes, what: str) -> dict[int, bytes]:
    """The length-delimited fields of a protobuf message (last one wins); other wire types are skipped."""
    found: dict[int, bytes] = {}
    at = 0
    while at < len(message):
        tag = _read_uvarint(message, at)
        if tag is None:
            raise ProtocolError(f"{what} ends inside a field tag")
        key, at = tag
        number, wire = key >> 3, key & 7
        if wire == 0:
            skipped = _read_uvarint(message, at)
            if skipped is None:
                raise ProtocolError(f"{what} ends inside a varint field")
            at = skipped[1]
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        elif wire == 2:
            size = _read_uvarint(message, at)
            if size is None or size[1] + size[0] > len(message):
                raise ProtocolError(f"{what} field {number} runs past the message")
            found[number] = message[size[1] : size[1] + size[0]]
            at = size[1] + size[0]
        else:
            raise ProtocolError(f"{what} is not protobuf (wire type {wire}): not a CometBFT p2p endpoint")
    if at > len(message):
        raise ProtocolError(f"{what} ends inside a fixed-size field")
    return found


def hello_message(ephemeral_pub: bytes) -> bytes:
    """gogotypes.BytesValue{value}, varint-delimited."""
    return delimited(_field(1, ephemeral_pub))


def auth_sig_message(pubkey: bytes, signature: bytes) -> bytes:
    """p2p.AuthSigMessage{pub_key: PublicKey{ed25519}, sig}, varint-delimited."""
    return delimited(_field(1, _field(1, pubkey)) + _field(2, signature))


def parse_hello(message: bytes) -> bytes:
    value = _fields(message, "the ephemeral key message").get(1, b"")
    if len(value) != 32:
        raise ProtocolError(f"the remote's ephemeral key has {len(value)} bytes, expected 32")
    return value


def parse_auth_sig(message: bytes) -> tuple[bytes, bytes]:
    fields = _fields(message, "the auth signature message")
    key = _fields(fields.get(1, b""), "the node public key")
    if 1 not in key:
        kinds = [_KEY_FIELDS.get(n, f"field {n}") for n in key] or ["none"]
        raise ProtocolError(f"the remote's node key is not ed25519 (got {', '.join(kinds)})")
    if len(key[1]) != 32:
        raise ProtocolError(f"the remote's ed25519 node key has {len(key[1])} bytes, expected 32")
    sig = fields.get(2, b"")
    if len(sig) != 64:
        raise ProtocolError(f"the remote's challenge signature has {len(sig)} bytes, expected 64")
    return key[1], sig


# --- keys and frames ------------------------------------------------------------------------------------


def hkdf_sha256(secret: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with an empty salt, as Go's hkdf.New(sha256.New, secret, nil, info)."""
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def derive_secrets(dh_secret: bytes, local_is_least: bool) -> tuple[bytes, bytes]:
    """(receive key, send key): the lower ephemeral key's side receives with the first 32 bytes."""
    okm = hkdf_sha256(dh_secret, KEY_AND_CHALLENGE_GEN, 96)
    first, second = okm[:32], okm[32:64]
    return (first, second) if local_is_least else (second, first)


def challenge(low_pub: bytes, high_pub: bytes, dh_secret: bytes) -> bytes:
    transcript = Transcript(TRANSCRIPT_LABEL)
    transcript.append_message(b"EPHEMERAL_LOWER_PUBLIC_KEY", low_pub)
    transcript.append_message(b"EPHEMERAL_UPPER_PUBLIC_KEY", high_pub)
    transcript.append_message(b"DH_SECRET", dh_secret)
    return transcript.challenge_bytes(b"SECRET_CONNECTION_MAC", 32)


class FrameCipher:
    """One direction of the connection: ChaCha20-Poly1305 with a 12-byte nonce, counter LE in bytes 4..12."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0

    def _nonce(self) -> bytes:
        nonce = b"\x00" * 4 + self._counter.to_bytes(8, "little")
        self._counter += 1
        return nonce

    def seal(self, data: bytes) -> bytes:
        """Data in frames of at most DATA_MAX bytes, as Write does (one frame for an empty write: none)."""
        out = bytearray()
        for start in range(0, len(data), DATA_MAX):
            chunk = data[start : start + DATA_MAX]
            frame = len(chunk).to_bytes(4, "little") + chunk.ljust(DATA_MAX, b"\x00")
            out += sodium.crypto_aead_chacha20poly1305_ietf_encrypt(frame, None, self._nonce(), self._key)
        return bytes(out)

    def open(self, sealed: bytes) -> bytes:
        try:
            frame = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(sealed, None, self._nonce(), self._key)
        except nacl.exceptions.CryptoError:
            raise ProtocolError(
                "a frame does not decrypt: the remote does not share our session key"
            ) from None
        size = int.from_bytes(frame[:4], "little")
        if size > DATA_MAX:
            raise OversizeError(f"a frame declares {size} data bytes, at most {DATA_MAX} are allowed")
        return frame[4 : 4 + size]


# --- the handshake --------------------------------------------------------------------------------------


class SecretHandshake:
    """One side of the handshake. `hello()` first, then `receive()` each chunk the remote sends and send
    what it returns, until `proven` is set. At most `max_bytes` from the remote are accepted."""

    def __init__(self, identity: nacl.signing.SigningKey, ephemeral_secret: bytes, max_bytes: int) -> None:
        if len(ephemeral_secret) != 32:
            raise ValueError(f"an X25519 secret has 32 bytes, got {len(ephemeral_secret)}")
        if max_bytes < MIN_HANDSHAKE_BYTES:
            raise ValueError(f"max_bytes {max_bytes} is below the {MIN_HANDSHAKE_BYTES} a handshake needs")
        self._identity = identity
        self._eph_secret = ephemeral_secret
        self._eph_pub = sodium.crypto_scalarmult_base(ephemeral_secret)
        self._max_bytes = max_bytes
        self._received = 0  # bytes taken into the handshake (anything after the proof is not counted)
        self._wire = bytearray()  # received, not yet consumed
        self._plain = bytearray()  # decrypted, not yet parsed
        self._challenge = b""
        self._recv: FrameCipher | None = None
        self.proven: Proven | None = None

    def hello(self) -> bytes:
        return hello_message(self._eph_pub)

    def receive(self, data: bytes) -> bytes:
        """Consume the remote's bytes; return what to send now (empty when nothing)."""
        if self.proven is not None:
            return b""  # what follows the proof (the remote's NodeInfo) is not ours to read
        self._received += len(data)
        if self._received > self._max_bytes:
            raise OversizeError(f"the remote sent more than {self._max_bytes} bytes without proving its key")
        self._wire += data
        out = b""
        if self._recv is None:
            message = self._take_delimited(self._wire)
            if message is None:
                return b""
            out = self._on_hello(parse_hello(message))
        assert self._recv is not None
        while self.proven is None and len(self._wire) >= SEALED_FRAME_SIZE:
            self._plain += self._recv.open(bytes(self._wire[:SEALED_FRAME_SIZE]))
            del self._wire[:SEALED_FRAME_SIZE]
            message = self._take_delimited(self._plain)
            if message is not None:
                self._on_auth(*parse_auth_sig(message))
        return out

    def _take_delimited(self, buf: bytearray) -> bytes | None:
        head = _read_uvarint(buf, 0)
        if head is None:
            return None
        size, at = head
        if size > self._max_bytes:
            raise OversizeError(
                f"the remote announced a {size}-byte message, over the {self._max_bytes} allowed"
            )
        if len(buf) < at + size:
            return None
        message = bytes(buf[at : at + size])
        del buf[: at + size]
        return message

    def _on_hello(self, remote_pub: bytes) -> bytes:
        try:
            dh = sodium.crypto_scalarmult(self._eph_secret, remote_pub)
        except nacl.exceptions.RuntimeError:
            dh = b""  # libsodium refuses an all-zero shared secret
        if not any(dh):  # Go's X25519 refuses a low-order point the same way
            raise ProtocolError("the remote's ephemeral key is a low-order point")
        low, high = sorted((self._eph_pub, remote_pub))
        recv_key, send_key = derive_secrets(dh, local_is_least=self._eph_pub == low)
        self._challenge = challenge(low, high, dh)
        self._recv = FrameCipher(recv_key)
        signature = self._identity.sign(self._challenge).signature
        return FrameCipher(send_key).seal(auth_sig_message(bytes(self._identity.verify_key), signature))

    def _on_auth(self, pubkey: bytes, signature: bytes) -> None:
        try:
            nacl.signing.VerifyKey(pubkey).verify(self._challenge, signature)
        except nacl.exceptions.BadSignatureError:
            node_id = node_id_from_pubkey(pubkey)
            raise BadSignatureError(
                f"the remote claimed node id {node_id} but its signature does not verify"
            ) from None
        self.proven = Proven(pubkey=pubkey, node_id=node_id_from_pubkey(pubkey))
