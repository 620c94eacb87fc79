"""The restart judge: which workloads could run two pods signing with one key, and what it says about them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.workload_safety import restart_refusal
from core.peer_formats import ConsumerLayout, LayoutError


def deployment(strategy: dict[str, Any] | None, replicas: int | None = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    if strategy is not None:
        spec["strategy"] = strategy
    return spec


def test_recreate_deployment_of_one_replica_is_safe() -> None:
    assert restart_refusal("deployment", "consumer-1", deployment({"type": "Recreate"}), "local") is None


def test_rolling_update_is_refused_with_the_reason_and_the_ways_out() -> None:
    spec = deployment(
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    )
    reason = restart_refusal("deployment", "consumer-1", spec, "local")
    assert reason is not None
    assert reason.startswith("deployment/consumer-1 uses strategy RollingUpdate (maxSurge 25%)")
    assert "two signers with one key" in reason
    assert "strategy.type: Recreate" in reason and "peersync.io/signer: remote" in reason


@pytest.mark.parametrize(
    "strategy", [None, {}, {"type": "RollingUpdate"}, {"rollingUpdate": {"maxSurge": 0}}]
)
def test_the_default_strategy_and_max_surge_zero_are_refused_too(strategy: dict[str, Any] | None) -> None:
    # Kubernetes defaults to RollingUpdate; even maxSurge 0 overlaps (terminating pods are not counted).
    assert restart_refusal("deployment", "c", deployment(strategy), "local") is not None


def test_absent_replicas_means_one() -> None:
    assert (
        restart_refusal("deployment", "c", deployment({"type": "Recreate"}, replicas=None), "local") is None
    )
    assert restart_refusal("statefulset", "c", {}, "local") is None


@pytest.mark.parametrize("kind", ["deployment", "statefulset"])
def test_more_than_one_signing_replica_is_refused(kind: Any) -> None:
    reason = restart_refusal(kind, "c", deployment({"type": "Recreate"}, replicas=2), "local")
    assert reason is not None and f"{kind}/c runs 2 replicas of a signing node" in reason


def test_a_single_statefulset_is_safe_whatever_its_update_strategy() -> None:
    # OnDelete / paused are refused by kube_ops.restart itself; the judge only answers "two signers?".
    spec = {"replicas": 1, "updateStrategy": {"type": "RollingUpdate"}}
    assert restart_refusal("statefulset", "c", spec, "local") is None


@given(
    kind=st.sampled_from(["deployment", "statefulset"]),
    replicas=st.one_of(st.none(), st.integers(min_value=0, max_value=20)),
    strategy=st.sampled_from([None, "Recreate", "RollingUpdate", "Other"]),
    signer=st.sampled_from(["local", "remote", "none"]),
)
def test_refused_exactly_when_two_pods_could_sign(
    kind: Any, replicas: int | None, strategy: str | None, signer: Any
) -> None:
    spec = deployment(None if strategy is None else {"type": strategy}, replicas)
    count = 1 if replicas is None else replicas
    unsafe = signer == "local" and (count > 1 or (kind == "deployment" and strategy != "Recreate"))
    reason = restart_refusal(kind, "w", spec, signer)
    assert (reason is not None) == unsafe
    if reason is not None:
        assert reason.startswith(f"{kind}/w ")


def test_the_namespace_declares_its_signer() -> None:
    assert ConsumerLayout.from_annotations("c", {}).signer == "local"
    for signer in ("local", "remote", "none"):
        assert ConsumerLayout.from_annotations("c", {"peersync.io/signer": signer}).signer == signer


@pytest.mark.parametrize(
    ("value", "message"), [("", "is empty"), ("horcrux", "is not one of local, remote, none")]
)
def test_a_bad_signer_annotation_is_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(
        LayoutError, match=f"annotation peersync.io/signer.*{message}|peersync.io/signer is empty"
    ):
        ConsumerLayout.from_annotations("c", {"peersync.io/signer": value})
