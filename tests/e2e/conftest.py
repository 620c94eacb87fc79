from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devnet.testbed import World, default_world, random_subnet


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with World(tmp_path, default_world(random_subnet())) as w:
        yield w
