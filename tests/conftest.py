"""The real components (issue 10) in the suite: tests/real/* and the `real` parameters of the e2e tests
(tests/e2e/conftest.py) are marked `real` and skipped LOUDLY when `make testbed` has not run; and they run
in two queues of their own (RealTestsApart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadFileScheduling

from devnet.real.binaries import MANIFEST, NOT_BUILT

REAL_DIR = Path(__file__).resolve().parent / "real"
REAL_E2E_UNIT = "real-e2e"
REAL_COMPONENTS_UNIT = "real-components"


class RealTestsApart(LoadFileScheduling):
    """`--dist loadfile` (a module stays on one worker: module-scoped worlds), except that the real testbed's
    tests are two units of work, each run one test after another on one worker: the e2e tests' `[real]`
    parameters (each a whole real world: a provider, up to 9 cometbft nodes, a control plane) and tests/real/*
    (one real component per module). Two whole real worlds at once on two cores starve each other and the
    emulated tests beside them; one beside the lighter component tests does not. (pytest-xdist's `loadgroup` would do this with
    marks, but under pytest 9 it groups nothing: the nodeid suffix it sets is no longer read.)"""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith("tests/real/"):
            return REAL_COMPONENTS_UNIT
        if nodeid.endswith("[real]"):
            return REAL_E2E_UNIT
        return str(super()._split_scope(nodeid))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    return RealTestsApart(config, log) if config.getvalue("dist") == "loadfile" else None


_skipped: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_DIR in item.path.parents:
            item.add_marker(pytest.mark.real)
        if item.get_closest_marker("real") is not None and not MANIFEST.exists():
            item.add_marker(pytest.mark.skip(reason=NOT_BUILT))
            _skipped.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        # A skip is easy to miss in a long run: say it once more, at the end, where it cannot be missed.
        terminalreporter.section("REAL TESTBED NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.line(f"{len(_skipped)} real-component tests did NOT run: {NOT_BUILT}", red=True)
