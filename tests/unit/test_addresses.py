"""Address conversions on cosmpy's bech32, with addresses from the Cosmos Hub (valcons vectors: test_upstream)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cosmpy.crypto.address import Address

from core.addresses import (
    AddressError,
    account_to_valoper,
    decode,
    encode,
    valcons_address,
    valoper_to_account,
)

# The same operator on cosmoshub-4 in both forms (each with its own valid checksum).
VALOPER = "cosmosvaloper1sjllsnramtg3ewxqwwrwjxfgc4n4ef9u2lcnj0"
ACCOUNT = "cosmos1sjllsnramtg3ewxqwwrwjxfgc4n4ef9u0tvx7u"
KEY = base64.b64decode("rblUWQSomA8pUbGVINfs3ZEzL0oWzoG6+KAiutXJvuY=")


def test_valoper_and_account_are_the_same_bytes() -> None:
    assert valoper_to_account(VALOPER) == ACCOUNT
    assert account_to_valoper(ACCOUNT) == VALOPER
    assert decode(VALOPER, "cosmosvaloper").hex() == "84bff84c7ddad11cb8c07386e91928c5675ca4bc"


def test_other_prefixes_round_trip() -> None:
    data = decode(ACCOUNT, "cosmos")
    assert decode(encode("neutronvaloper", data), "neutronvaloper") == data


def test_upper_case_addresses_are_accepted() -> None:
    assert valoper_to_account(VALOPER.upper()) == ACCOUNT


@pytest.mark.parametrize(
    ("text", "hrp", "message"),
    [
        (ACCOUNT, "cosmosvaloper", "has prefix 'cosmos', expected 'cosmosvaloper'"),
        (VALOPER[:-1] + "q", "cosmosvaloper", "is not a valid bech32 address"),  # checksum
        (VALOPER[:10] + VALOPER[10:].upper(), "cosmosvaloper", "is not a valid bech32 address"),  # mixed case
        ("cosmosvaloper1bad", "cosmosvaloper", "is not a valid bech32 address"),
        ("", "cosmos", "is not a valid bech32 address"),
    ],
)
def test_decode_refuses_with_a_specific_error(text: str, hrp: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        decode(text, hrp)


def test_valoper_to_account_refuses_an_account() -> None:
    with pytest.raises(AddressError, match="expected 'cosmosvaloper'"):
        valoper_to_account(ACCOUNT)


def test_encode_refuses_bytes_that_are_not_an_address() -> None:
    with pytest.raises(AddressError, match="20 bytes, got 32"):
        encode("cosmos", KEY)


def test_valcons_is_not_cosmpys_public_key_rule() -> None:
    # cosmpy's Address(PublicKey) hashes ripemd160(sha256(key)) (the secp256k1 account rule); CometBFT's
    # consensus address is sha256(key)[:20]. The reference vector holds only for the latter.
    ripemd = hashlib.new("ripemd160", hashlib.sha256(KEY).digest()).digest()
    assert valcons_address(KEY) == "cosmosvalcons1l9h92mefd9mandh48enl2wgdas23kg8l0l05hp"
    assert valcons_address(KEY) != str(Address(ripemd, prefix="cosmosvalcons"))
