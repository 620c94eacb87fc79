"""Deterministic validator keys: an ed25519 consensus key and a secp256k1 operator (account) key.

Both come from `Scenario.key_seed`, so every run of a scenario has the same addresses. The operator key
really signs the emulator's transactions, so a client that verifies signatures sees valid ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import nacl.signing
from cosmpy.crypto.address import Address
from cosmpy.crypto.keypairs import PrivateKey

from core.addresses import account_address, consensus_address_bytes, valcons_address, valoper_address
from devnet.scenario import Scenario


@dataclass(frozen=True)
class ValidatorKeys:
    consensus_pubkey: bytes
    operator_key: PrivateKey
    account_bytes: bytes

    @property
    def operator_pubkey(self) -> bytes:
        """Compressed 33-byte secp256k1 public key, as carried in SignerInfo."""
        return self.operator_key.public_key.public_key_bytes

    @property
    def consensus_address(self) -> bytes:
        return consensus_address_bytes(self.consensus_pubkey)


@dataclass(frozen=True)
class AddressBook:
    """The bech32 forms of one validator's addresses under a prefix."""

    operator: str
    account: str
    valcons: str


def ed25519_public_key(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def derive_keys(scenario: Scenario, moniker: str, consensus_pubkey: bytes | None = None) -> ValidatorKeys:
    operator_key = PrivateKey(scenario.key_seed("operator", moniker))
    account_bytes = bytes(Address(operator_key.public_key))
    cons = consensus_pubkey or ed25519_public_key(scenario.key_seed("consensus", moniker))
    return ValidatorKeys(consensus_pubkey=cons, operator_key=operator_key, account_bytes=account_bytes)


def addresses(keys: ValidatorKeys, prefix: str) -> AddressBook:
    return AddressBook(
        operator=valoper_address(keys.account_bytes, prefix),
        account=account_address(keys.account_bytes, prefix),
        valcons=valcons_address(keys.consensus_pubkey, prefix),
    )


def module_account(name: str, prefix: str) -> str:
    """SDK module account address: sha256(module name)[:20] (address.Module without derivation keys)."""
    return account_address(hashlib.sha256(name.encode()).digest()[:20], prefix)
