"""Reads the provider chain over its REST gateway (Cosmos SDK staking + ICS provider).

Staking validators are parsed with cosmpy's protobuf types (the SDK 0.50 `cosmos.staking.v1beta1.Validator`)
over our own aiohttp transport, not through cosmpy's REST client, because that client is synchronous
(`requests`, no timeout: it would block the activity's event loop), raises a bare RuntimeError without the
gateway's message, and parses with unknown fields rejected (reference/chain-wire-formats.md §5), so a chain
upgrade that adds a field would stop peersync; we parse with `ignore_unknown_fields=True`. cosmpy has no
ICS provider types and no paging loop (its `query_validators` stops at the first page), so the ICS reads stay
plain JSON and the loop that follows `next_key` stays ours.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import aiohttp
from cosmpy.protos.cosmos.crypto.ed25519.keys_pb2 import PubKey as Ed25519PubKey
from cosmpy.protos.cosmos.staking.v1beta1 import staking_pb2
from google.protobuf import json_format, symbol_database
from pydantic import BaseModel, ConfigDict, Field

ICS = "/interchain_security/ccv/provider"
STAKING = "/cosmos/staking/v1beta1"
EDIT_VALIDATOR = "/cosmos.staking.v1beta1.MsgEditValidator"
ED25519 = "/cosmos.crypto.ed25519.PubKey"
PAGE_LIMIT = 200
MAX_PAGES = 1000


class ChainError(RuntimeError):
    """The chain answered with an error (its google.rpc.Status message) or not at all."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PubKey(_Lenient):
    type_url: str = Field(alias="@type")
    key: str = ""  # base64; empty for a key type cosmpy's protos do not know (only ed25519 is used)

    def raw(self) -> bytes:
        return base64.b64decode(self.key, validate=True)


class Description(_Lenient):
    moniker: str = ""
    details: str = ""


class Validator(_Lenient):
    operator_address: str
    consensus_pubkey: PubKey
    jailed: bool = False
    status: str
    tokens: str = "0"
    description: Description


USED_FIELDS = ("operator_address", "consensus_pubkey", "jailed", "status", "tokens", "description")


def _known_any(type_url: str) -> bool:
    try:
        symbol_database.Default().pool.FindMessageTypeByName(type_url.rpartition("/")[2])
    except KeyError:
        return False
    return True


def parse_validator(row: dict[str, Any]) -> Validator:
    """One gateway validator read as the SDK's own protobuf type, so a field of the wrong type is refused.

    Raises json_format.ParseError. A consensus key of a type the protos do not know (only ed25519 is loaded:
    it is the only one peersync derives from) is kept by its type name alone rather than failing the whole
    read: such a validator has no valcons, so it cannot match an opt-in either way.
    """
    # Only the fields peersync reads: json_format is pure Python, and the commission and timestamps would
    # quadruple the cost of a 300-validator refresh for nothing (and fail it if their shape ever changed).
    used = {name: row[name] for name in USED_FIELDS if name in row}
    pubkey = used.get("consensus_pubkey")
    key_type = str(pubkey.get("@type") or "") if isinstance(pubkey, dict) else ""
    if key_type and not _known_any(key_type):
        used["consensus_pubkey"] = None
    msg = json_format.ParseDict(used, staking_pb2.Validator(), ignore_unknown_fields=True)
    if not msg.operator_address:  # proto3 has no required fields; a validator without one is unusable
        raise json_format.ParseError("no operator_address")
    key = ""
    if msg.consensus_pubkey.type_url == ED25519:
        inner = Ed25519PubKey()
        msg.consensus_pubkey.Unpack(inner)
        key = base64.b64encode(inner.key).decode()
    return Validator(
        operator_address=msg.operator_address,
        consensus_pubkey=PubKey.model_validate({"@type": key_type, "key": key}),
        jailed=msg.jailed,
        status=staking_pb2.BondStatus.Name(msg.status),  # a status newer than the protos reads UNSPECIFIED
        tokens=msg.tokens,
        description=Description(moniker=msg.description.moniker, details=msg.description.details),
    )


class ConsumerChain(_Lenient):
    consumer_id: str
    chain_id: str
    phase: str


class ChainRest:
    """One REST gateway; use as `async with ChainRest(url) as chain:`."""

    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ChainRest:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str) -> dict[str, Any]:
        assert self._session is not None, "use ChainRest as an async context manager"
        url = f"{self.base_url}{path}"
        try:
            async with self._session.get(url) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ChainError(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if resp.status != 200 or not isinstance(body, dict):
            message = body.get("message") if isinstance(body, dict) else None
            raise ChainError(f"GET {url}: HTTP {resp.status}: {message or body!r}")
        return body

    async def _pages(self, path: str, field: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        key: str | None = None
        sep = "&" if "?" in path else "?"
        for _ in range(MAX_PAGES):
            page = f"{path}{sep}pagination.limit={PAGE_LIMIT}"
            if key:
                page += f"&pagination.key={quote(key, safe='')}"
            body = await self.get(page)
            items.extend(body.get(field) or [])
            key = (body.get("pagination") or {}).get("next_key")
            if not key:
                return items
        raise ChainError(f"GET {self.base_url}{path}: more than {MAX_PAGES} pages")

    async def validators(self) -> list[Validator]:
        """Every validator in every bond status: ICS lets unbonded validators opt in."""
        path = f"{STAKING}/validators"
        found: list[Validator] = []
        for row in await self._pages(path, "validators"):
            if not isinstance(row, dict):
                raise ChainError(f"GET {self.base_url}{path}: a validator is not a JSON object: {row!r}")
            try:
                found.append(parse_validator(row))
            except json_format.ParseError as exc:
                who = row.get("operator_address")
                raise ChainError(
                    f"GET {self.base_url}{path}: validator {who!r} is not a staking Validator: {exc}"
                ) from exc
        return found

    async def launched_consumers(self) -> list[ConsumerChain]:
        rows = await self._pages(f"{ICS}/consumer_chains/CONSUMER_PHASE_LAUNCHED", "chains")
        return [ConsumerChain.model_validate(c) for c in rows]

    async def opted_in(self, consumer_id: str) -> list[str]:
        """Provider consensus addresses (valcons) of the validators opted in to `consumer_id`."""
        body = await self.get(f"{ICS}/opted_in_validators/{quote(consumer_id, safe='')}")
        return list(body.get("validators_provider_addresses") or [])

    async def latest_edit_height(self, account_address: str) -> int | None:
        """Height of the validator's newest MsgEditValidator, or None when the chain has none indexed."""
        query = f"message.action='{EDIT_VALIDATOR}' AND message.sender='{account_address}'"
        path = f"/cosmos/tx/v1beta1/txs?query={quote(query, safe='')}&limit=10&order_by=ORDER_BY_DESC"
        try:
            body = await self.get(path)
        except ChainError:
            return None
        # Failed edits (code != 0) are indexed too but changed nothing.
        ok = [r for r in body.get("tx_responses") or [] if int(r.get("code") or 0) == 0]
        return int(ok[0]["height"]) if ok else None
