"""Give running CometBFT nodes their new peers without a restart: the unsafe RPC `dial_peers`, checked
with `net_info`.

`dial_peers?persistent=true` REPLACES a node's in-memory persistent list, so the whole list goes in one
call: peersync's entries AND the operator's (sentries, private peers), or the node would drop those until
its next start. The ConfigMap (written before) is what the node reads at its next start. Only peersync's
own peers are waited for in `net_info`: an operator's sentry that is down is not peersync's to report. Every peer passes the
grammar again here, and the call is URL-encoded, so nothing from the chain can rewrite it.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from pydantic import BaseModel, Field

from core.peers import parse_peer

CALL_TIMEOUT = aiohttp.ClientTimeout(total=10)


class RpcDisabledError(RuntimeError):
    """The node does not serve the unsafe routes (`[rpc] unsafe = false`): no retry will change that."""


class DialRefusedError(RuntimeError):
    """The node answered the call with an error (CometBFT's -32603 and its reason)."""


class NodeDial(BaseModel):
    url: str
    connected: int = 0
    not_connected: list[str] = Field(default_factory=list, description="node ids not in net_info yet")


async def _rpc(session: aiohttp.ClientSession, url: str, route: str, params: dict[str, str]) -> dict:
    async with session.get(f"{url}/{route}", params=params, timeout=CALL_TIMEOUT) as resp:
        if resp.status == 404 and "json" not in resp.content_type:
            raise RpcDisabledError(
                f"{url} has no /{route}: set [rpc] unsafe = true on the node, or use strategy restart"
            )
        body = await resp.json(content_type=None)
    if "error" in body:
        error = body["error"]
        raise DialRefusedError(f"{url}/{route}: {error.get('message')} {error.get('data') or ''}".strip())
    return body["result"]


async def dial(session: aiohttp.ClientSession, url: str, peers: list[str]) -> None:
    canonical = [parse_peer(p).render() for p in peers]
    await _rpc(session, url, "dial_peers", {"persistent": "true", "peers": json.dumps(canonical)})


async def connected_ids(session: aiohttp.ClientSession, url: str) -> set[str]:
    result = await _rpc(session, url, "net_info", {})
    return {str(p["node_info"]["id"]) for p in result.get("peers") or []}


async def dial_and_verify(
    urls: list[str], peers: list[str], verify_seconds: float, verify: list[str] | None = None
) -> list[NodeDial]:
    """Dial every node with `peers`, then wait up to `verify_seconds` for each to list every peer of
    `verify` (default: all of `peers`) in `net_info`.

    A peer that stays out (its node is down) is reported, not an error: the dial itself succeeded."""
    wanted = {parse_peer(p).node_id for p in (peers if verify is None else verify)}
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(dial(session, url, peers) for url in urls))
        deadline = time.monotonic() + verify_seconds
        reports = [NodeDial(url=url) for url in urls]
        while True:
            seen = await asyncio.gather(*(connected_ids(session, url) for url in urls))
            for report, ids in zip(reports, seen, strict=True):
                report.connected = len(wanted & ids)
                report.not_connected = sorted(wanted - ids)
            if all(not r.not_connected for r in reports) or time.monotonic() > deadline:
                return reports
            await asyncio.sleep(0.5)
