"""A free port picked for Temporal can be taken before Temporal binds it (CI saw it: another test's
process got there first and the dev server panicked). The devnet then picks again, and only then."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import devnet.stack
from devnet.ports import free_port
from devnet.processes import ChildExited
from devnet.scenario import Scenario
from devnet.stack import Devnet, DevnetOptions
from devnet.testbed import default_world, random_subnet


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def scenario() -> Scenario:
    return default_world(random_subnet())


def options(state: Path, temporal_port: int) -> DevnetOptions:
    return DevnetOptions(
        state_dir=state,
        temporal_port=temporal_port,
        ui_port=None,
        chain_rpc_port=0,
        chain_rest_port=0,
        kube_port=0,
    )


async def test_a_picked_port_that_was_taken_is_picked_again(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks = iter([taken_port])
    monkeypatch.setattr(devnet.stack, "port_or_free", lambda port: port or next(picks, None) or free_port())
    net = Devnet(scenario(), options(tmp_path, temporal_port=0))
    try:
        manifest = await net.start()
    finally:
        await net.stop()
    assert manifest.temporal_address != f"127.0.0.1:{taken_port}"
    assert "address already in use" in (tmp_path / "temporal.log").read_text()


async def test_a_port_the_operator_chose_is_not_swapped_behind_their_back(
    tmp_path: Path, taken_port: int
) -> None:
    net = Devnet(scenario(), options(tmp_path, temporal_port=taken_port))
    with pytest.raises(ChildExited, match=f"temporal exited .*\n.*{taken_port}.*address already in use"):
        try:
            await net.start()
        finally:
            await net.stop()


def test_picks_come_from_below_the_kernels_ephemeral_range() -> None:
    """Outgoing connections and every bind(0) draw from the ephemeral range; a pick there races them."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    picks = {free_port() for _ in range(20)}
    assert all(10000 <= port < low for port in picks), picks
    for port in picks:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # and each is free
