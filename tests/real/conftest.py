"""Tests against the real components (issue 10): marked `real`, skipped loudly when `make testbed` has not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.real.binaries import MANIFEST, NOT_BUILT

HERE = Path(__file__).resolve().parent
_skipped: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue  # a conftest's hook sees every collected item, not only this folder's
        item.add_marker(pytest.mark.real)
        if not MANIFEST.exists():
            item.add_marker(pytest.mark.skip(reason=NOT_BUILT))
            _skipped.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        # A skip is easy to miss in a long run: say it once more, at the end, where it cannot be missed.
        terminalreporter.section("REAL TESTBED NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.line(f"{len(_skipped)} real-component tests did NOT run: {NOT_BUILT}", red=True)
