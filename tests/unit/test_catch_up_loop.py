"""Catch-up gating's looks: the gate opens soon after a node is seen advancing, at a bounded request rate,
and always on the pods Ready right after the looks (issue 11 item 8)."""

from __future__ import annotations

import time

import pytest

from activities import catch_up
from activities.catch_up import CatchUpTimeoutError, NodeLook, look_interval, wait_caught_up

A, B = "http://10.0.0.5:26657", "http://10.0.0.6:26657"


class Nodes:
    """Fake nodes: each look at a url answers the next of its scripted heights (the last one repeats)."""

    def __init__(self, heights: dict[str, list[int]]) -> None:
        self.heights = heights
        self.looks: dict[str, int] = {url: 0 for url in heights}

    async def look(self, _session: object, url: str) -> NodeLook:
        seen = self.heights[url]
        height = seen[min(self.looks[url], len(seen) - 1)]
        self.looks[url] += 1
        return NodeLook(url=url, height=height, catching_up=False)


class Ready:
    """The apiserver's ready pods: one list per call (the last repeats); counts the calls."""

    def __init__(self, *sets: list[str]) -> None:
        self.sets, self.calls = sets, 0

    async def __call__(self) -> list[str]:
        self.calls += 1
        return self.sets[min(self.calls - 1, len(self.sets) - 1)]


def test_looks_are_fast_at_first_and_slow_down_as_the_wait_lengthens() -> None:
    assert look_interval(0) == catch_up.FAST_LOOK_SECONDS == 0.05  # at most 20 /status a second per node
    assert look_interval(10) == pytest.approx(0.2)  # the gate opens at most 2% late
    assert look_interval(600) == catch_up.LOOK_INTERVAL_SECONDS == 1.0  # a long replay: once a second


async def test_the_gate_opens_within_a_fast_look_of_the_next_block() -> None:
    nodes = Nodes({A: [100, 100, 100, 101]})  # caught up at 100; the next block shows at the 4th look
    ready = Ready([A])
    began = time.monotonic()
    verdict = await wait_caught_up(ready, 1, time.time() + 30, lambda _m: None, looker=nodes.look)
    took = time.monotonic() - began
    assert verdict.done and verdict.height == 101 and nodes.looks[A] == 4
    # Three intervals of 50 ms (a second each before): generous for a loaded machine, far below 3 s.
    assert took < 1.0, took
    # The apiserver: one read at the start and one to confirm the set before the gate opens.
    assert ready.calls == 2


async def test_a_pod_that_turns_ready_at_the_last_moment_must_itself_be_seen_advancing() -> None:
    nodes = Nodes({A: [100, 101], B: [200, 200, 201]})
    ready = Ready([A], [A, B])  # the confirming read finds B Ready too
    verdict = await wait_caught_up(ready, 1, time.time() + 30, lambda _m: None, looker=nodes.look)
    assert verdict.done and verdict.height == 101  # A at 101 (looked again), B seen advancing to 201
    assert nodes.looks[B] == 3 and ready.calls == 3


async def test_a_node_that_never_advances_fails_at_the_deadline_with_what_was_seen() -> None:
    nodes = Nodes({A: [100]})
    with pytest.raises(CatchUpTimeoutError, match="height 100 not advancing"):
        await wait_caught_up(Ready([A]), 1, time.time() + 0.3, lambda _m: None, looker=nodes.look)
