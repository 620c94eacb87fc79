"""Logs and the Temporal runtime of the long-running processes (`peersync worker`, `peersync watch`).

Logs: text for a terminal, or (PEERSYNC_LOG_FORMAT=json) one JSON object per line for a log pipeline, with
the Temporal context (`temporal_workflow` / `temporal_activity`: ids, type, task queue) and peersync's own
fields (`consumer`, `chain_id`, `validator`, `result`, ...) as keys rather than folded into the message.
The Temporal core's own warnings are forwarded into the same logging, so no line escapes the format.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from workers.settings import Settings
from workflows import metrics

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
            )
        )
        # The context goes in its own keys; repeating it inside the message would only add noise.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Every HTTP request of the kubernetes client at INFO would drown the log.
    logging.getLogger("urllib3").setLevel(max(logging.WARNING, root.level))


def process_runtime(settings: Settings, serve_metrics: bool) -> Runtime:
    """The process's one Temporal runtime: core logs forwarded to Python logging, and (for the worker) one
    Prometheus endpoint for the SDK's metrics and peersync's (workflows.metrics)."""
    prometheus = None
    if serve_metrics and settings.metrics_address:
        prometheus = PrometheusConfig(
            bind_address=settings.metrics_address,
            counters_total_suffix=True,
            durations_as_seconds=True,
            histogram_bucket_overrides={
                metrics.ROLLOUT_DURATION: metrics.ROLLOUT_BUCKETS_SECONDS,
                metrics.NODE_DOWN: metrics.ROLLOUT_BUCKETS_SECONDS,
            },
        )
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=prometheus,
            global_tags={"peersync_cluster": settings.cluster_id},
        )
    )
