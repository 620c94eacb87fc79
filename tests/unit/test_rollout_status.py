"""deployment_verdict and a previous rollout's timeout (activities/rollout_status.py)."""

from __future__ import annotations

from typing import Any

from activities.rollout_status import deployment_verdict


def _deployment(restarted_at: str | None, timed_out_at: str, updated: int = 0) -> dict[str, Any]:
    annotations = {} if restarted_at is None else {"kubectl.kubernetes.io/restartedAt": restarted_at}
    return {
        "metadata": {"name": "consumer-1", "generation": 4},
        "spec": {"replicas": 1, "template": {"metadata": {"annotations": annotations}}},
        "status": {
            "observedGeneration": 4,
            "replicas": 1,
            "updatedReplicas": updated,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "lastUpdateTime": timed_out_at,
                }
            ],
        },
    }


def test_a_timeout_from_before_the_restart_is_the_previous_rollouts_and_the_wait_goes_on() -> None:
    verdict = deployment_verdict(_deployment("2026-12-06T05:36:10Z", "2026-12-06T05:36:02Z"))
    assert not verdict.done and not verdict.failed, verdict
    assert verdict.message == "0 out of 1 new replicas have been updated"


def test_a_timeout_after_the_restart_fails_the_rollout() -> None:
    verdict = deployment_verdict(_deployment("2026-12-06T05:36:10Z", "2026-12-06T05:46:11Z"))
    assert verdict.failed and verdict.message == 'deployment "consumer-1" exceeded its progress deadline'


def test_without_a_restart_time_a_timeout_fails_as_kubectl_says() -> None:
    assert deployment_verdict(_deployment(None, "2026-12-06T05:36:02Z")).failed
    assert deployment_verdict(_deployment("not a time", "2026-12-06T05:36:02Z")).failed
