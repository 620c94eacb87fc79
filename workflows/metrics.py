"""peersync's own metrics, recorded through the Temporal runtime's meter.

They leave the worker on the same Prometheus endpoint as the SDK's metrics (PEERSYNC_METRICS_ADDRESS),
with the worker's exporter adding `_total` to counters and reporting durations in seconds. Workflow
metrics are skipped while a workflow replays, so a cached-out or recovered workflow never counts twice.
The catalogue with every name and label is docs/metrics.md.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import MetricMeter

ROLLOUT_DURATION = "peersync_rollout_duration_seconds"
# Consumer-node rollouts take from seconds (a small Deployment) to many minutes (a StatefulSet of
# archive nodes): the default latency buckets (tuned for RPCs) would put them all in the last bucket.
ROLLOUT_BUCKETS_SECONDS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
# From a restart to its nodes signing again (rollout plus catch-up): the time a validator misses blocks.
NODE_DOWN = "peersync_node_down_seconds"


def registry_validators(by_status: dict[str, int]) -> None:
    gauge = workflow.metric_meter().create_gauge(
        "peersync_registry_validators", "Validators in the registry, by the status of their endpoint"
    )
    for status, count in by_status.items():
        gauge.set(count, {"status": status})


def endpoint_change_finished(phase: str) -> None:
    workflow.metric_meter().create_counter(
        "peersync_endpoint_changes", "Endpoint changes that ended, by final phase"
    ).add(1, {"phase": phase})


def sync_finished(chain_id: str, result: str) -> None:
    workflow.metric_meter().create_counter(
        "peersync_syncs",
        "Consumer syncs, by result (unchanged, written, live, restarted, awaiting_approval, failed)",
    ).add(1, {"chain_id": chain_id, "result": result})


def restarted(chain_id: str, took: timedelta | None) -> None:
    """`took` None: the rollout ended while no worker watched it, so its duration is not known."""
    meter = workflow.metric_meter()
    meter.create_counter("peersync_restarts", "Consumer workloads restarted onto a new peer set").add(
        1, {"chain_id": chain_id}
    )
    if took is None:
        return
    meter.create_histogram_timedelta(
        ROLLOUT_DURATION, "From the restart of a consumer workload to its completed rollout", unit="s"
    ).record(took, {"chain_id": chain_id})


def restart_refused(chain_id: str) -> None:
    """Counted in the restart activity when a restart would run two signing pods (activities/workload_safety)."""
    _activity_meter().create_counter(
        "peersync_restarts_refused", "Consumer restarts refused because two pods could sign with one key"
    ).add(1, {"chain_id": chain_id})


def node_down(chain_id: str, took: timedelta) -> None:
    """Restart start -> every node caught up (catch-up gating), in workflow time."""
    workflow.metric_meter().create_histogram_timedelta(
        NODE_DOWN, "From the restart of a consumer workload to its nodes caught up with the chain", unit="s"
    ).record(took, {"chain_id": chain_id})


def probe_failures(target: str, count: int = 1) -> None:
    """`target` is `endpoint` (a changed validator's new address) or `peer` (a peer about to be written)."""
    if count:
        _activity_meter().create_counter(
            "peersync_probe_failures", "TCP probes that found nobody answering"
        ).add(count, {"target": target})


def _activity_meter() -> MetricMeter:
    return activity.metric_meter() if activity.in_activity() else MetricMeter.noop
