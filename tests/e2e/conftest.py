from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from devnet.real.world import make_world
from devnet.testbed import World, default_world, random_subnet

# A module marked `pytestmark = pytest.mark.both_testbeds` runs each test that uses `testbed` (through `world`
# or its own fixture) on the emulated AND the real testbed (issue 10); a test that cannot run on the real one
# carries `@pytest.mark.emulated_only(reason="...")`, and says why there.


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "testbed" not in metafunc.fixturenames:
        return
    params: list[object] = ["emulated"]
    only = metafunc.definition.get_closest_marker("emulated_only")
    if metafunc.definition.get_closest_marker("both_testbeds") is not None and only is None:
        params.append(pytest.param("real", marks=pytest.mark.real))
    if only is not None and not only.kwargs.get("reason"):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: emulated_only needs reason=...")
    metafunc.parametrize("testbed", params, indirect=True)


@pytest.fixture
def testbed(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "emulated"))


@pytest.fixture
async def world(tmp_path: Path, testbed: str) -> AsyncIterator[World]:
    async with make_world(testbed, tmp_path, default_world(random_subnet())) as w:
        yield w


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cli_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One devnet with a running worker for a whole module of CLI tests (each module gets its own)."""
    async with World(tmp_path_factory.mktemp("cli"), default_world(random_subnet())) as world:
        await world.start_worker()
        await world.registry_ready()
        yield world
