"""`make bench`: run the benchmarks, print their rows, rewrite their sections of bench/RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench import emulators, overhead, pipeline, reconcile, safety, testbeds
from bench.report import section, write_results

BENCHES = {
    "emulators": emulators,
    "overhead": overhead,
    "pipeline": pipeline,
    "reconcile": reconcile,
    "safety": safety,
    "testbeds": testbeds,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run, of {sorted(BENCHES)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}")
    sections, failed = {}, []
    for name in args.names or list(BENCHES):
        module = BENCHES[name]
        rows = asyncio.run(module.run())
        for r in rows:
            print(
                f"{name}: {r.metric}: {r.value:,.1f} {r.unit} (target {r.target}){'' if r.ok else '  <-- MISSED'}"
            )
            if not r.ok:
                failed.append(f"{name}: {r.metric}")
        sections[name] = section(name, module.__doc__ or "", rows)
    write_results(sections)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
