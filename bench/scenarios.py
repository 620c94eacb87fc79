"""Scenario files for benchmarks: many validators and consumers, generated deterministically."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import yaml

from devnet.scenario import ClusterSpec, ConsumerSpec, NamespaceSpec, Scenario, ValidatorSpec


def large_scenario(
    validators: int = 300, consumers: int = 500, opted_per_consumer: int = 6, seed: int = 7
) -> Scenario:
    """`validators` validators on 127.1.x.y, `consumers` launched consumers, validator 0's cluster runs them all.

    Validator 0 opts in everywhere (its cluster gets one namespace per consumer); each consumer also has
    `opted_per_consumer - 1` others drawn at random, so the emulator binds a realistic number of listeners.
    """
    rng = random.Random(seed)
    monikers = [f"val{i:03d}" for i in range(validators)]
    vals = [
        ValidatorSpec(moniker=m, endpoint=f"127.1.{i // 250}.{i % 250 + 1}") for i, m in enumerate(monikers)
    ]
    cons = [
        ConsumerSpec(
            chain_id=f"bench-{c}", opted_in=[monikers[0], *rng.sample(monikers[1:], opted_per_consumer - 1)]
        )
        for c in range(consumers)
    ]
    kinds = ["deployment", "statefulset"]
    formats = ["config.toml", "init.sh", "key"]
    namespaces = [
        NamespaceSpec(consumer=c.chain_id, workload=kinds[i % 2], peers_format=formats[i % 3])  # type: ignore[arg-type]
        for i, c in enumerate(cons)
    ]
    return Scenario(
        seed="peersync-bench",
        allow_cidrs=["127.1.0.0/16"],
        validators=vals,
        consumers=cons,
        clusters=[ClusterSpec(id="bench", validator=monikers[0], namespaces=namespaces)],
    )


def write(scenario: Scenario, path: Path) -> Path:
    path.write_text(yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--validators", type=int, default=300)
    parser.add_argument("--consumers", type=int, default=500)
    args = parser.parse_args()
    write(large_scenario(args.validators, args.consumers), args.out)
