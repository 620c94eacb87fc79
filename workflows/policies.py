"""Every retry policy and timeout budget peersync uses, in one place (DESIGN invariant 11).

Each step retries exponentially with a cap on the interval and a total budget (its schedule-to-close
timeout). Errors that retrying cannot fix are raised as ApplicationError with one of the types below,
which every policy lists as non-retryable, so none of them is ever retried anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio.common import RetryPolicy

# ApplicationError types that no retry can fix.
INVALID_INPUT = "InvalidInput"
INVALID_ENDPOINT = "InvalidEndpoint"
UNKNOWN_VALIDATOR = "UnknownValidator"
NOT_MANAGED = "NotManaged"
WORKLOAD_REFUSED = "WorkloadRefused"  # paused Deployment, OnDelete StatefulSet, missing workload
ROLLOUT_FAILED = "RolloutFailed"  # ProgressDeadlineExceeded, StatefulSet deadline
OPERATOR_CANCELLED = "OperatorCancelled"
# A ConfigMap whose peers peersync cannot rewrite safely (raised non-retryable by the activity itself).
UNWRITABLE_PEERS = "UnwritablePeers"
NON_RETRYABLE = [
    INVALID_INPUT,
    INVALID_ENDPOINT,
    UNKNOWN_VALIDATOR,
    NOT_MANAGED,
    WORKLOAD_REFUSED,
    ROLLOUT_FAILED,
    OPERATOR_CANCELLED,
]

# Retryable, but worth a name in the UI.
UNREACHABLE = "Unreachable"


@dataclass(frozen=True)
class StepBudget:
    """How one kind of activity is retried: per attempt, in total, and how fast attempts back off."""

    attempt: timedelta
    total: timedelta
    initial: timedelta = timedelta(seconds=1)
    maximum: timedelta = timedelta(seconds=30)
    heartbeat: timedelta | None = None

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=self.initial,
            backoff_coefficient=2.0,
            maximum_interval=self.maximum,
            non_retryable_error_types=NON_RETRYABLE,
        )

    def with_total(self, total: timedelta) -> StepBudget:
        """The same retries within another total budget (an attempt never outlasts the total)."""
        return replace(self, total=total, attempt=min(self.attempt, total))

    def options(self) -> dict[str, object]:
        """Keyword arguments for workflow.execute_activity / start_activity."""
        opts: dict[str, object] = {
            "start_to_close_timeout": self.attempt,
            "schedule_to_close_timeout": self.total,
            "retry_policy": self.retry,
        }
        if self.heartbeat is not None:
            opts["heartbeat_timeout"] = self.heartbeat
        return opts

    def first_local_attempt(self) -> dict[str, object]:
        """One quick local attempt, no retries: a fast path tried before the full (regular) budget."""
        return {
            "start_to_close_timeout": min(self.attempt, FIRST_LOCAL_ATTEMPT),
            "retry_policy": RetryPolicy(maximum_attempts=1),
        }

    def local_options(self) -> dict[str, object]:
        """The same budget for workflow.execute_local_activity (which has no heartbeats)."""
        return {k: v for k, v in self.options().items() if k != "heartbeat_timeout"}


# A local attempt holds the workflow task (queries, signals wait): keep a fast path short.
FIRST_LOCAL_ATTEMPT = timedelta(seconds=10)

# Reads from the chain: cheap and safe to repeat; a chain that is down for 10 minutes fails the step.
CHAIN_READ = StepBudget(
    attempt=timedelta(seconds=30), total=timedelta(minutes=10), maximum=timedelta(seconds=20)
)
# Reads and compare-then-write of ConfigMaps (409s are retried inside the activity first).
KUBE_WRITE = StepBudget(
    attempt=timedelta(seconds=30), total=timedelta(minutes=10), maximum=timedelta(seconds=20)
)
# The reachability gate: a new endpoint gets 5 minutes to come up before the change is shown as blocked
# (PEERSYNC_PROBE_BUDGET overrides the total; the validate step carries it into the workflow's history).
PROBE = StepBudget(
    attempt=timedelta(seconds=20),
    total=timedelta(minutes=5),
    initial=timedelta(seconds=2),
    maximum=timedelta(seconds=30),
)
# Dialling a consumer's new peers at sync time: one quick concurrent round (the change's own probe has
# already waited for the endpoint); an unreachable peer keeps its old address instead.
PEER_PROBE = StepBudget(attempt=timedelta(seconds=30), total=timedelta(minutes=2))
# Waiting for a rollout: heartbeats carry progress (and cancellation); StatefulSets have no deadline of
# their own, so the attempt budget is the deadline.
ROLLOUT_WAIT = StepBudget(
    attempt=timedelta(minutes=20), total=timedelta(minutes=30), heartbeat=timedelta(seconds=10)
)
# `dial_peers` on the running nodes (live strategies): a node restarting for another reason comes back
# within minutes; the attempt covers the net_info check (LIVE_VERIFY_SECONDS).
LIVE_DIAL = StepBudget(attempt=timedelta(seconds=90), total=timedelta(minutes=10))
# Starting workflows from workflows (through the client).
TEMPORAL_CALL = StepBudget(attempt=timedelta(seconds=30), total=timedelta(minutes=10))
