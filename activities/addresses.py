"""Bech32 addresses of the provider chain: operator, account and consensus (valcons) forms. Pure."""

from __future__ import annotations

import hashlib

import bech32


class AddressError(ValueError):
    """A string that is not a bech32 address of the expected kind."""


def encode(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(data, 8, 5)
    if words is None:  # pragma: no cover - convertbits only fails on out-of-range input
        raise AddressError("cannot convert address bytes")
    return bech32.bech32_encode(hrp, words)


def decode(address: str, hrp: str) -> bytes:
    """Bytes behind `address`, which must carry exactly the human-readable part `hrp`."""
    got_hrp, words = bech32.bech32_decode(address)
    if got_hrp is None or words is None:
        raise AddressError(f"{address!r} is not a valid bech32 address")
    if got_hrp != hrp:
        raise AddressError(f"{address!r} has prefix {got_hrp!r}, expected {hrp!r}")
    data = bech32.convertbits(words, 5, 8, False)
    if data is None:
        raise AddressError(f"{address!r} has malformed data")
    return bytes(data)


def consensus_address_bytes(pubkey: bytes) -> bytes:
    """sha256(ed25519 pubkey)[:20]: CometBFT's validator address and the valcons payload."""
    if len(pubkey) != 32:
        raise AddressError(f"an ed25519 consensus key has 32 bytes, got {len(pubkey)}")
    return hashlib.sha256(pubkey).digest()[:20]


def valcons_address(pubkey: bytes, prefix: str = "cosmos") -> str:
    return encode(f"{prefix}valcons", consensus_address_bytes(pubkey))


def valoper_address(account_bytes: bytes, prefix: str = "cosmos") -> str:
    return encode(f"{prefix}valoper", account_bytes)


def account_address(account_bytes: bytes, prefix: str = "cosmos") -> str:
    return encode(prefix, account_bytes)


def valoper_to_account(valoper: str, prefix: str = "cosmos") -> str:
    """The account form of an operator address (same bytes): what `message.sender` carries."""
    return account_address(decode(valoper, f"{prefix}valoper"), prefix)


def account_to_valoper(account: str, prefix: str = "cosmos") -> str:
    return valoper_address(decode(account, prefix), prefix)
