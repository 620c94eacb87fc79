"""Benchmark rows and the RESULTS.md they are written to, with the machine and the date."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    target: str
    ok: bool


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def fmt(value: float) -> str:
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"


def section(name: str, doc: str, rows: list[Row]) -> str:
    lines = [f"## {name}", "", doc.strip(), "", "| metric | value | target | ok |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.metric} | {fmt(r.value)} {r.unit} | {r.target} | {'yes' if r.ok else 'NO'} |")
    return "\n".join(lines) + "\n"


def write_results(sections: dict[str, str]) -> None:
    """Replace the named sections of RESULTS.md, keeping the others."""
    existing: dict[str, str] = {}
    if RESULTS.exists():
        chunks = RESULTS.read_text().split("\n## ")[1:]
        existing = {c.split("\n", 1)[0]: "## " + c.rstrip("\n") + "\n" for c in chunks}
    existing.update(sections)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"# Benchmark results\n\nLast run {now} on {machine()}.\nRun `make bench` to reproduce.\n\n"
    RESULTS.write_text(header + "\n".join(existing[k] for k in existing))
