"""Bech32 addresses of the provider chain: operator, account and consensus (valcons) forms. Pure.

The bech32 coding is cosmpy's `Address`. The consensus address is derived here: cosmpy derives an address from a
public key only by the secp256k1 account rule, ripemd160(sha256(key)), which is wrong for the ed25519 consensus
keys (CometBFT takes sha256(key)[:20]; vectors in tests/unit/test_upstream.py).
"""

from __future__ import annotations

import hashlib

from cosmpy.crypto.address import Address


class AddressError(ValueError):
    """A string that is not a bech32 address of the expected kind."""


def encode(hrp: str, data: bytes) -> str:
    """`data` (20 bytes, as every address peersync handles) in bech32 under `hrp`."""
    try:
        return str(Address(data, prefix=hrp))
    except RuntimeError as exc:  # cosmpy's only complaint about bytes is their length
        raise AddressError(f"an address has 20 bytes, got {len(data)}") from exc


def decode(address: str, hrp: str) -> bytes:
    """Bytes behind `address`, which must carry exactly the human-readable part `hrp`."""
    try:
        parsed = Address(address)
    except RuntimeError as exc:  # bad characters, mixed case, checksum, length
        raise AddressError(f"{address!r} is not a valid bech32 address") from exc
    # cosmpy keeps no prefix of its own: a valid bech32 string's prefix is everything before its last "1".
    got_hrp = address.lower().rpartition("1")[0]
    if got_hrp != hrp:
        raise AddressError(f"{address!r} has prefix {got_hrp!r}, expected {hrp!r}")
    return bytes(parsed)


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
