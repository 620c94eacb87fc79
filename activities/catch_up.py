"""After a restart: are the workload's nodes signing again? Catch-up gating for the next consumer's rollout.

A pod turns Ready long before its node has caught up with the chain (it replays the blocks it missed), and
a node that is catching up does not sign. So a restart is over only when every expected pod is Ready and
its CometBFT `/status` says `catching_up: false` with a `latest_block_height` that has advanced since the
node was first seen caught up (a node stuck at one height is not signing either). The judgement is pure
(`judge`); `wait_caught_up` polls the nodes and calls it until it holds or the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, Field

CALL_TIMEOUT = aiohttp.ClientTimeout(total=5)
# Between two looks at the nodes. The slot is held until the gate opens, so every moment between a node's
# catch-up (then its next block) and the look that sees it is lost for the next consumer: look often at
# first, when a look costs a node one in-memory `/status` (at most 1 / FAST_LOOK_SECONDS = 20 per second),
# and less often as the wait lengthens (the interval is LAG_FRACTION of the time waited, so the gate opens
# at most 2% late), never less than once per LOOK_INTERVAL_SECONDS, so a long replay is not loaded.
FAST_LOOK_SECONDS = 0.05
LOOK_INTERVAL_SECONDS = 1.0
LAG_FRACTION = 0.02
# The ready pods come from the apiserver (namespace, workload, pod list): re-read at most once per second
# (wait_rollout has already waited for them), and once more before the gate opens, so a done verdict is
# always about the pods Ready right after the looks.
READY_REREAD_SECONDS = 1.0


def look_interval(waited: float) -> float:
    """Seconds until the next look, after `waited` seconds of waiting."""
    return min(max(waited * LAG_FRACTION, FAST_LOOK_SECONDS), LOOK_INTERVAL_SECONDS)


class CatchUpTimeoutError(RuntimeError):
    """The nodes did not catch up by the deadline; the message says what the last look saw."""


class NodeLook(BaseModel):
    """One node's `/status` at one moment, or why it could not be read."""

    url: str
    height: int | None = None
    catching_up: bool | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return f"node {urlsplit(self.url).hostname}"


class Verdict(BaseModel):
    done: bool
    message: str
    height: int | None = Field(None, description="the lowest height of the nodes once done")
    baselines: dict[str, int] = Field(
        default_factory=dict, description="url -> height at which the node was first seen caught up"
    )


def judge(expected: int, baselines: dict[str, int], looks: list[NodeLook]) -> Verdict:
    """Done when `expected` Ready nodes answer caught up above the height they were first seen caught up at.

    `baselines` is the previous verdict's; a node that is catching up again, unreadable, or lower than its
    baseline (restarted once more) loses it, so it must be seen advancing afresh."""
    new: dict[str, int] = {}
    waiting: list[str] = []
    for look in sorted(looks, key=lambda n: n.url):
        if look.error is not None:
            waiting.append(f"{look.name}: {look.error}")
        elif look.catching_up or look.height is None:
            waiting.append(f"{look.name}: catching up at height {look.height}")
        elif look.url not in baselines or look.height < baselines[look.url]:
            new[look.url] = look.height
            waiting.append(f"{look.name}: caught up at height {look.height}, waiting for the next block")
        elif look.height == baselines[look.url]:
            new[look.url] = look.height
            waiting.append(f"{look.name}: height {look.height} not advancing")
        else:
            new[look.url] = baselines[look.url]
    if len(looks) < expected:
        waiting.insert(0, f"{len(looks)} of {expected} pod(s) ready")
    if waiting:
        return Verdict(done=False, message="; ".join(waiting), baselines=new)
    heights = [look.height for look in looks if look.height is not None]
    lowest = min(heights) if heights else None
    return Verdict(
        done=True, message=f"{len(looks)} node(s) caught up at height {lowest}", height=lowest, baselines=new
    )


def parse_status(url: str, body: object) -> NodeLook:
    """A node's `/status` JSON-RPC answer as a look (an answer of the wrong shape is an error, not a crash)."""
    try:
        if not isinstance(body, dict):
            raise TypeError("not a JSON object")
        sync = body["result"]["sync_info"]
        catching_up = sync["catching_up"]
        if not isinstance(catching_up, bool):
            raise TypeError("catching_up is not a boolean")
        return NodeLook(url=url, height=int(sync["latest_block_height"]), catching_up=catching_up)
    except (KeyError, TypeError, ValueError) as exc:
        error = body.get("error") if isinstance(body, dict) else None
        reason = f"RPC error {error}" if error else f"unexpected /status answer ({exc!r})"
        return NodeLook(url=url, error=reason)


async def look(session: aiohttp.ClientSession, url: str) -> NodeLook:
    try:
        async with session.get(f"{url}/status", timeout=CALL_TIMEOUT) as resp:
            return parse_status(url, await resp.json(content_type=None))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        # A node whose RPC does not answer yet (still starting) is waited for, with the reason shown.
        return NodeLook(url=url, error=f"RPC unreachable: {exc or type(exc).__name__}")


Looker = Callable[[aiohttp.ClientSession, str], Awaitable[NodeLook]]


async def wait_caught_up(
    ready_urls: Callable[[], Awaitable[list[str]]],
    expected: int,
    deadline_at: float,
    progress: Callable[[str], None],
    looker: Looker = look,
) -> Verdict:
    """Look at the ready nodes until `judge` says done; CatchUpTimeoutError once `deadline_at` (epoch) passes.

    The ready pods are re-read at most once per READY_REREAD_SECONDS (pods may still be turning Ready) and
    always before a done verdict is returned: when they changed, the new set is looked at instead."""
    baselines: dict[str, int] = {}
    began = time.monotonic()
    urls = await ready_urls()
    read_at = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            looks = await asyncio.gather(*(looker(session, url) for url in urls))
            verdict = judge(expected, baselines, list(looks))
            progress(verdict.message)
            baselines = verdict.baselines
            if verdict.done or time.monotonic() - read_at >= READY_REREAD_SECONDS:
                current = await ready_urls()
                read_at = time.monotonic()
                if verdict.done and sorted(current) == sorted(urls):
                    return verdict
                urls = current  # when done: another pod turned Ready (or one left): look at the set now
            if time.time() > deadline_at:
                raise CatchUpTimeoutError(verdict.message)
            await asyncio.sleep(look_interval(time.monotonic() - began))
