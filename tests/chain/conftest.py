"""Fixtures for the chain-emulator conformance tests.

Every emulator runs on its own background loop (the official clients under test are synchronous), binds
free ports, and places validator endpoints in a random 127.x.y.0/24 so parallel devnets never collide.
Tests talk to it only through its public URLs: RPC, REST, websocket and the admin API.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devnet.chain.server import ChainEmulator
from devnet.loop_thread import serve_in_thread
from devnet.scenario import ConsumerSpec, Scenario, ValidatorSpec

MONIKERS = ["alice", "bob", "carol", "dave"]
NO_CLOCK = 3600.0  # tests commit blocks explicitly, so heights are deterministic


def _free_subnet() -> str:
    """A 127.x.y prefix whose .1 address has nothing listening on the consumer ports we use."""
    rng = random.SystemRandom()
    while True:
        prefix = f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}"
        if prefix.startswith("127.0.") or prefix == "127.10.10":
            continue
        with socket.socket() as probe:
            try:
                probe.bind((f"{prefix}.1", 0))
            except OSError:
                continue
        return prefix


@dataclass
class Devnet:
    """A running emulator plus small helpers for its admin API."""

    emulator: ChainEmulator
    net: str
    session: requests.Session

    @property
    def rpc(self) -> str:
        return self.emulator.rpc_url

    @property
    def rest(self) -> str:
        return self.emulator.rest_url

    @property
    def ws(self) -> str:
        return self.emulator.ws_url

    def ip(self, last: int) -> str:
        return f"{self.net}.{last}"

    def admin(self, path: str, body: dict[str, Any] | None = None, expect: int | None = 200) -> Any:
        response = self.session.post(f"{self.rpc}/devnet/{path}", json=body or {}, timeout=10)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json()

    def state(self) -> dict[str, Any]:
        return self.session.get(f"{self.rpc}/devnet/state", timeout=10).json()

    def validator(self, moniker: str) -> dict[str, Any]:
        return next(v for v in self.state()["validators"] if v["moniker"] == moniker)

    def rpc_get(self, method: str, **params: str) -> requests.Response:
        return self.session.get(f"{self.rpc}/{method}", params=params, timeout=10)

    def rest_get(self, path: str, **params: str) -> requests.Response:
        return self.session.get(f"{self.rest}{path}", params=params, timeout=10)


def default_like_scenario(net: str, **overrides: Any) -> Scenario:
    """DESIGN.md's devnet on the test's own subnet."""
    spec: dict[str, Any] = {
        "allow_cidrs": [f"{net}.0/24"],
        "block_time": NO_CLOCK,
        "validators": [
            ValidatorSpec(moniker=m, endpoint=f"{net}.{i}") for i, m in enumerate(MONIKERS, start=1)
        ],
        "consumers": [
            ConsumerSpec(chain_id="consumer-1", opted_in=MONIKERS),
            ConsumerSpec(chain_id="consumer-2", opted_in=["alice", "bob", "carol"]),
            ConsumerSpec(chain_id="consumer-3", opted_in=["alice", "dave"]),
        ],
    }
    spec.update(overrides)
    return Scenario(**spec)


def _run(scenario: Scenario, net: str) -> Iterator[Devnet]:
    emulator = ChainEmulator(scenario)
    with serve_in_thread(emulator), requests.Session() as session:
        yield Devnet(emulator, net, session)


@pytest.fixture
def net() -> str:
    return _free_subnet()


@pytest.fixture
def devnet(net: str) -> Iterator[Devnet]:
    yield from _run(default_like_scenario(net), net)


@pytest.fixture
def make_devnet(net: str) -> Iterator[Callable[..., Devnet]]:
    """Start an emulator on a custom scenario (built from `net`); stopped at teardown."""
    running: list[Iterator[Devnet]] = []

    def start(**overrides: Any) -> Devnet:
        generator = _run(default_like_scenario(net, **overrides), net)
        running.append(generator)
        return next(generator)

    yield start
    for generator in reversed(running):
        generator.close()


def big_scenario(net: str, validators: int = 300, consumers: int = 500, with_endpoints: int = 4) -> Scenario:
    """The bench shape: many validators and consumers, only a few validators with loopback endpoints."""
    monikers = [f"val-{i:03d}" for i in range(validators)]
    specs = [
        ValidatorSpec(
            moniker=m,
            endpoint=f"{net}.{i + 1}" if i < with_endpoints else f"203.0.113.{i % 250 + 1}",
            status="BOND_STATUS_BONDED" if i % 10 else "BOND_STATUS_UNBONDED",
        )
        for i, m in enumerate(monikers)
    ]
    chains = [
        ConsumerSpec(
            chain_id=f"bench-{i:03d}",
            phase="CONSUMER_PHASE_LAUNCHED" if i % 5 else "CONSUMER_PHASE_REGISTERED",
            opted_in=monikers[: 4 + (i % 40)],
        )
        for i in range(consumers)
    ]
    return Scenario(allow_cidrs=[f"{net}.0/24"], block_time=NO_CLOCK, validators=specs, consumers=chains)


@pytest.fixture(scope="module")
def big_devnet() -> Iterator[Devnet]:
    net = _free_subnet()
    yield from _run(big_scenario(net), net)
