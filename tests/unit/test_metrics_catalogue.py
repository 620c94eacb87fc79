"""docs/metrics.md lists exactly the series peersync creates, with the names Prometheus shows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "workflows" / "metrics.py", ROOT / "workers" / "watcher.py"]
COUNTERS = {"create_counter", "Counter"}
KINDS = {
    "create_counter": "counter",
    "Counter": "counter",
    "create_gauge": "gauge",
    "create_gauge_float": "gauge",
    "Gauge": "gauge",
    "create_histogram_timedelta": "histogram",
    "create_histogram": "histogram",
    "Histogram": "histogram",
}


def created() -> dict[str, str]:
    """Exposed name -> type, from the metric constructors in the code (constants resolved)."""
    found: dict[str, str] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        constants = {
            t.id: n.value.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, str)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args):
            fn = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if fn not in KINDS:
                continue
            first = call.args[0]
            name = first.value if isinstance(first, ast.Constant) else constants.get(getattr(first, "id", ""))
            assert isinstance(name, str), f"{path.name}: metric name not a literal in {ast.unparse(call)}"
            found[name + ("_total" if fn in COUNTERS else "")] = KINDS[fn]
    return found


def documented() -> dict[str, str]:
    rows = re.findall(r"^\| `(peersync_\w+)` \| (\w+) \|", (ROOT / "docs" / "metrics.md").read_text(), re.M)
    return dict(rows)


def test_the_catalogue_is_the_code() -> None:
    code = created()
    assert len(code) >= 9, code  # the derivation itself works
    assert documented() == code
