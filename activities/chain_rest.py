"""Reads the provider chain over its REST gateway (Cosmos SDK staking + ICS provider).

Plain HTTP and tolerant pydantic models rather than cosmpy's REST layer: that layer rejects unknown JSON
fields (reference/chain-wire-formats.md §5), so a chain upgrade that adds a field would stop peersync.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

ICS = "/interchain_security/ccv/provider"
STAKING = "/cosmos/staking/v1beta1"
EDIT_VALIDATOR = "/cosmos.staking.v1beta1.MsgEditValidator"
PAGE_LIMIT = 200
MAX_PAGES = 1000


class ChainError(RuntimeError):
    """The chain answered with an error (its google.rpc.Status message) or not at all."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PubKey(_Lenient):
    type_url: str = Field(alias="@type")
    key: str

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
            raise ChainError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status != 200 or not isinstance(body, dict):
            message = body.get("message") if isinstance(body, dict) else None
            raise ChainError(f"GET {path}: HTTP {resp.status}: {message or body!r}")
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
        raise ChainError(f"GET {path}: more than {MAX_PAGES} pages")

    async def validators(self) -> list[Validator]:
        """Every validator in every bond status: ICS lets unbonded validators opt in."""
        return [Validator.model_validate(v) for v in await self._pages(f"{STAKING}/validators", "validators")]

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
