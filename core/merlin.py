"""Merlin transcripts over STROBE-128 over keccak-f[1600]: the subset CometBFT's SecretConnection uses.

No maintained Python package implements Merlin, so this is a small pure transcription of the reference
(dalek-cryptography/merlin, src/strobe.rs and src/transcript.rs; the same subset as the Go port CometBFT
links, oasisprotocol/curve25519-voi primitives/merlin): AD, meta-AD, KEY and PRF, no transport ops.
Checked against the published vectors in tests/unit/test_merlin.py.
"""

from __future__ import annotations

import struct

_MASK = (1 << 64) - 1

# keccak-f[1600] (FIPS 202): round constants, rho rotations and the pi lane order, in the compact form of
# the Keccak team's reference (lanes indexed x + 5y).
_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip
_ROT = (1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44)
_PI = (10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1)
_LANES = struct.Struct("<25Q")


def _rol(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (64 - shift))) & _MASK


def keccak_f1600(state: bytearray) -> None:
    """Permute the 200-byte state in place (lanes little-endian, as FIPS 202 serialises them)."""
    a = list(_LANES.unpack(state))
    for rc in _RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]  # theta
        for x in range(5):
            d = c[(x + 4) % 5] ^ _rol(c[(x + 1) % 5], 1)
            for y in range(0, 25, 5):
                a[y + x] ^= d
        carried = a[1]  # rho and pi
        for rot, lane in zip(_ROT, _PI, strict=True):
            a[lane], carried = _rol(carried, rot), a[lane]
        for y in range(0, 25, 5):  # chi
            row = a[y : y + 5]
            for x in range(5):
                a[y + x] = row[x] ^ (~row[(x + 1) % 5] & row[(x + 2) % 5])
        a[0] ^= rc  # iota
    _LANES.pack_into(state, 0, *a)


# STROBE v1.0.2 operation flags (only those Merlin uses).
_FLAG_I, _FLAG_A, _FLAG_C, _FLAG_M = 0x01, 0x02, 0x04, 0x10
_STROBE_R = 166  # 200 - 128/4 - 2: the rate of STROBE-128, less the two padding bytes


class Strobe128:
    """STROBE-128 with the AD, meta-AD, KEY and PRF operations (no transport: Merlin never sends)."""

    def __init__(self, protocol_label: bytes) -> None:
        self._st = bytearray(200)
        self._st[0:18] = bytes((1, _STROBE_R + 2, 1, 0, 1, 96)) + b"STROBEv1.0.2"
        keccak_f1600(self._st)
        self._pos = 0
        self._pos_begin = 0
        self._cur_flags = 0
        self.meta_ad(protocol_label, more=False)

    def clone(self) -> Strobe128:
        twin = object.__new__(Strobe128)
        twin._st = bytearray(self._st)
        twin._pos, twin._pos_begin, twin._cur_flags = self._pos, self._pos_begin, self._cur_flags
        return twin

    def meta_ad(self, data: bytes, more: bool) -> None:
        self._begin_op(_FLAG_M | _FLAG_A, more)
        self._absorb(data)

    def ad(self, data: bytes, more: bool) -> None:
        self._begin_op(_FLAG_A, more)
        self._absorb(data)

    def key(self, data: bytes, more: bool) -> None:
        self._begin_op(_FLAG_A | _FLAG_C, more)
        for byte in data:  # overwrite: the key replaces the rate bytes
            self._st[self._pos] = byte
            self._advance()

    def prf(self, length: int, more: bool) -> bytes:
        self._begin_op(_FLAG_I | _FLAG_A | _FLAG_C, more)
        out = bytearray(length)
        for i in range(length):  # squeeze: output the state byte and zero it
            out[i] = self._st[self._pos]
            self._st[self._pos] = 0
            self._advance()
        return bytes(out)

    def _absorb(self, data: bytes) -> None:
        for byte in data:
            self._st[self._pos] ^= byte
            self._advance()

    def _advance(self) -> None:
        self._pos += 1
        if self._pos == _STROBE_R:
            self._run_f()

    def _run_f(self) -> None:
        self._st[self._pos] ^= self._pos_begin
        self._st[self._pos + 1] ^= 0x04
        self._st[_STROBE_R + 1] ^= 0x80
        keccak_f1600(self._st)
        self._pos = 0
        self._pos_begin = 0

    def _begin_op(self, flags: int, more: bool) -> None:
        if more:
            # Continuing an operation: the reference asserts the same operation, so a misuse is a bug here.
            if flags != self._cur_flags:
                raise ValueError(f"strobe: continued op 0x{flags:02x} after op 0x{self._cur_flags:02x}")
            return
        old_begin = self._pos_begin
        self._pos_begin = self._pos + 1
        self._cur_flags = flags
        self._absorb(bytes((old_begin, flags)))
        # Cipher ops start on a fresh block so their output depends on everything absorbed before.
        if flags & _FLAG_C and self._pos != 0:
            self._run_f()


def _le32(length: int) -> bytes:
    if not 0 <= length <= 0xFFFFFFFF:
        raise ValueError(f"merlin: length {length} does not fit in 32 bits")
    return length.to_bytes(4, "little")


class Transcript:
    """A Merlin transcript: labelled messages in, labelled challenge bytes out."""

    def __init__(self, app_label: bytes) -> None:
        self._strobe = Strobe128(b"Merlin v1.0")
        self.append_message(b"dom-sep", app_label)

    def clone(self) -> Transcript:
        twin = object.__new__(Transcript)
        twin._strobe = self._strobe.clone()
        return twin

    def append_message(self, label: bytes, message: bytes) -> None:
        self._strobe.meta_ad(label, more=False)
        self._strobe.meta_ad(_le32(len(message)), more=True)
        self._strobe.ad(message, more=False)

    def challenge_bytes(self, label: bytes, length: int) -> bytes:
        self._strobe.meta_ad(label, more=False)
        self._strobe.meta_ad(_le32(length), more=True)
        return self._strobe.prf(length, more=False)
