from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from devnet.testbed import World, default_world, random_subnet


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with World(tmp_path, default_world(random_subnet())) as w:
        yield w


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cli_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One devnet with a running worker for a whole module of CLI tests (each module gets its own)."""
    async with World(tmp_path_factory.mktemp("cli"), default_world(random_subnet())) as world:
        await world.start_worker()
        await world.registry_ready()
        yield world
