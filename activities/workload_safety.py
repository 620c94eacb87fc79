"""Would restarting this workload run two pods that sign with one key? A pure judge, no I/O.

Why it matters: a consumer-chain validator that signs the same height twice is slashed and tombstoned on the
provider. Which workloads overlap an old and a new pod during a restart:
- Deployment RollingUpdate (any maxSurge, even 0): terminating pods are not counted, so the new pod starts as
  soon as the old one *starts* terminating and both run for the grace period.
- Deployment Recreate: new pods only once every old pod is gone -> safe at one replica.
- StatefulSet: an ordinal is replaced only after its old pod is gone -> safe at one replica.
More than one replica of a signing node is two signers already, whatever the strategy.
"""

from __future__ import annotations

from typing import Any

from core.peer_formats import Signer, WorkloadKind

_ADVICE = "annotate the namespace peersync.io/signer: remote (remote signer) or none (not a validator)"


def _replicas(spec: dict[str, Any]) -> int:
    value = spec.get("replicas")
    return 1 if value is None else int(value)  # the API defaults an absent replicas to 1


def _strategy(spec: dict[str, Any]) -> str:
    strategy = spec.get("strategy") or {}
    kind = str(strategy.get("type") or "RollingUpdate")
    if kind != "RollingUpdate":
        return kind
    rolling = strategy.get("rollingUpdate") or {}
    return f"RollingUpdate (maxSurge {rolling.get('maxSurge', '25%')})"


def restart_refusal(kind: WorkloadKind, name: str, spec: dict[str, Any], signer: Signer) -> str | None:
    """None when a restart can never run two signers at once; else why it is refused and how to fix it."""
    if signer != "local":
        return None  # a remote signer (or no signer at all) cannot double-sign through the pod overlap
    workload = f"{kind}/{name}"
    replicas = _replicas(spec)
    if replicas > 1:
        return (
            f"{workload} runs {replicas} replicas of a signing node: each signs with the same key; "
            f"scale it to 1, or {_ADVICE}"
        )
    if kind == "deployment":
        strategy = (spec.get("strategy") or {}).get("type") or "RollingUpdate"
        if strategy != "Recreate":
            return (
                f"{workload} uses strategy {_strategy(spec)}: a restart would run the new pod beside the old "
                f"one, two signers with one key; set strategy.type: Recreate, or {_ADVICE}"
            )
    return None
