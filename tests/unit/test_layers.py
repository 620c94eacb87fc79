"""The package layers point one way: workers/ (processes) may import activities/ and workflows/, never the
reverse, so that activities get a narrow config and never the process settings (issue 11, item 2).

Imports are read with `ast`, not by importing: a lazy import inside a function or under TYPE_CHECKING counts
too, and nothing is executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_packages(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """For each module file of `package`: the top-level packages it imports (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        tops: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops.add(node.module.split(".")[0])
        found[str(path.relative_to(root))] = tops
    return found


def offenders(package: str, forbidden: set[str], root: Path = ROOT) -> dict[str, list[str]]:
    return {
        module: sorted(tops & forbidden)
        for module, tops in imported_packages(package, root).items()
        if tops & forbidden
    }


@pytest.mark.parametrize("package", ["workflows", "activities"])
def test_workflows_and_activities_do_not_import_workers(package: str) -> None:
    assert imported_packages(package), f"no module found under {package}/"  # the walk itself works
    assert offenders(package, {"workers"}) == {}


def test_the_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    """The check must be able to fail: each way of importing workers/ is caught."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("import workers.settings\n")
    (pkg / "b.py").write_text("from workers.settings import Settings\n")
    (pkg / "c.py").write_text("def f():\n    from workers import plan\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import workers\n")
    (pkg / "e.py").write_text("from . import sibling\nimport workflows\n")  # relative: not a layer
    assert offenders("pkg", {"workers"}, tmp_path) == {f"pkg/{m}.py": ["workers"] for m in "abcd"}


def test_core_imports_no_outer_layer() -> None:
    if not (ROOT / "core").is_dir():
        pytest.skip("no core/ package yet (issue 11 item 2 plans one); its rule applies once it exists")
    assert offenders("core", {"workers", "activities", "workflows"}) == {}
