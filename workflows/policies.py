"""Every retry policy and timeout budget peersync uses, in one place (DESIGN invariant 11).

Each step retries exponentially with a cap on the interval and a total budget (its schedule-to-close
timeout). Errors that retrying cannot fix are raised as ApplicationError with one of the types below,
which every policy lists as non-retryable, so none of them is ever retried anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy

# ApplicationError types that no retry can fix.
INVALID_INPUT = "InvalidInput"
INVALID_ENDPOINT = "InvalidEndpoint"
UNKNOWN_VALIDATOR = "UnknownValidator"
NOT_MANAGED = "NotManaged"
WORKLOAD_REFUSED = "WorkloadRefused"  # paused Deployment, OnDelete StatefulSet, missing workload
ROLLOUT_FAILED = "RolloutFailed"  # ProgressDeadlineExceeded, StatefulSet deadline
CATCH_UP_FAILED = "CatchUpFailed"  # restarted nodes not caught up (or not advancing) by the deadline
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
    CATCH_UP_FAILED,
    OPERATOR_CANCELLED,
]

# Retryable, but worth a name in the UI.
UNREACHABLE = "Unreachable"
# The registry exists but its query failed: a sync retries rather than act on "no overrides known".
REGISTRY_UNAVAILABLE = "RegistryUnavailable"


class LocalActivityOptions(TypedDict, total=False):
    """The options of workflow.execute_local_activity_method that peersync sets (passed as **options)."""

    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy


class ActivityOptions(LocalActivityOptions, total=False):
    """The same for workflow.execute_activity_method / start_activity_method, which also heartbeat."""

    heartbeat_timeout: timedelta


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

    def options(self) -> ActivityOptions:
        """Keyword arguments for workflow.execute_activity_method / start_activity_method."""
        opts: ActivityOptions = {
            "start_to_close_timeout": self.attempt,
            "schedule_to_close_timeout": self.total,
            "retry_policy": self.retry,
        }
        if self.heartbeat is not None:
            opts["heartbeat_timeout"] = self.heartbeat
        return opts

    def first_local_attempt(self) -> LocalActivityOptions:
        """One quick local attempt, no retries: a fast path tried before the full (regular) budget."""
        return {
            "start_to_close_timeout": min(self.attempt, FIRST_LOCAL_ATTEMPT),
            "retry_policy": RetryPolicy(maximum_attempts=1),
        }

    def local_options(self) -> LocalActivityOptions:
        """The same budget for workflow.execute_local_activity_method (which has no heartbeats)."""
        return {
            "start_to_close_timeout": self.attempt,
            "schedule_to_close_timeout": self.total,
            "retry_policy": self.retry,
        }


# A local attempt holds the workflow task (queries, signals wait): keep a fast path short.
FIRST_LOCAL_ATTEMPT = timedelta(seconds=10)

# Reads from the chain: cheap and safe to repeat; a chain that is down for 10 minutes fails the step.
CHAIN_READ = StepBudget(
    attempt=timedelta(seconds=30), total=timedelta(minutes=10), maximum=timedelta(seconds=20)
)
# The registry's refresh: one quick local attempt (a quiet refresh costs one marker), then a round of
# regular attempts; a failed round is tried again at the next period or nudge
# (RegistryWorkflow also caps a round at a few periods), so a chain outage adds a few events per round.
REGISTRY_REFRESH = StepBudget(
    attempt=timedelta(seconds=30), total=timedelta(minutes=2), maximum=timedelta(seconds=10)
)
# Registries recorded before BOUNDED_REFRESH refreshed locally with no total budget (kept for their replay).
LEGACY_REGISTRY_REFRESH = LocalActivityOptions(
    start_to_close_timeout=timedelta(seconds=60), retry_policy=CHAIN_READ.retry
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
# A sync's reads as one step (plan_sync: the chain, the ConfigMap, a probe of the new peers): the chain's and
# the ConfigMap's retries (the probe never fails: an unreachable peer is its answer).
SYNC_PLAN = CHAIN_READ
# Waiting for a rollout: heartbeats carry progress (and cancellation); StatefulSets have no deadline of
# their own, so the attempt budget is the deadline.
ROLLOUT_WAIT = StepBudget(
    attempt=timedelta(minutes=20), total=timedelta(minutes=30), heartbeat=timedelta(seconds=10)
)
# After a restart, waiting for the nodes to catch up (PEERSYNC_CATCH_UP_DEADLINE, at most 30 minutes, is
# the deadline; it travels in the heartbeat details, so a retried attempt keeps it). Heartbeats carry the
# progress ("node 10.0.0.5: catching up at height 1200") and cancellation.
CATCH_UP = StepBudget(
    attempt=timedelta(minutes=35), total=timedelta(minutes=40), heartbeat=timedelta(seconds=10)
)
# Both waits after a restart in one activity (wait_restarted): their budgets end to end, each wait still
# bounded by its own deadline inside.
RESTART_WAIT = StepBudget(
    attempt=ROLLOUT_WAIT.attempt + CATCH_UP.attempt,
    total=ROLLOUT_WAIT.total + CATCH_UP.total,
    heartbeat=timedelta(seconds=10),
)
# `dial_peers` on the running nodes (live strategies): a node restarting for another reason comes back
# within minutes; the attempt covers the net_info check (LIVE_VERIFY_SECONDS).
LIVE_DIAL = StepBudget(attempt=timedelta(seconds=90), total=timedelta(minutes=10))
# How long an activity waits for the registry's `pinned` query (a stuck registry must not hold the attempt).
REGISTRY_QUERY_TIMEOUT = timedelta(seconds=10)
# Starting workflows from workflows (through the client).
TEMPORAL_CALL = StepBudget(attempt=timedelta(seconds=30), total=timedelta(minutes=10))


@dataclass(frozen=True)
class ReplyWait:
    """How a workflow waits for a ConsumerSync's answer (a `sync_done` signal): it asks again (same request
    id: answered at once when the sync already ran, ignored while it runs; a terminated ConsumerSync is
    started anew by the ask) after each interval, and gives up after `total` with a clear reason."""

    first: timedelta
    maximum: timedelta
    total: timedelta

    def interval(self, asked: int) -> timedelta:
        """How long to wait after the `asked`-th ask (1-based) before asking again: doubling, capped."""
        return min(self.first * 2 ** min(max(asked - 1, 0), 20), self.maximum)


# A sync with a restart takes up to ROLLOUT_WAIT + CATCH_UP and may queue behind other consumers' rollouts
# for a rollout slot: re-asking is cheap (one signal, deduped by request id); giving up is for a
# ConsumerSync that can never answer (no worker, a sync stuck for hours).
SYNC_REPLY = ReplyWait(first=timedelta(seconds=10), maximum=timedelta(minutes=5), total=timedelta(hours=4))
# Asking the registry for its snapshot (or to commit a change): it answers in its next workflow task, so a
# missing answer means a stuck or overloaded registry; asked again, and after the total the asker fails
# with the reason (never acting on what it does not know).
REGISTRY_ANSWER = ReplyWait(
    first=timedelta(seconds=5), maximum=timedelta(seconds=30), total=timedelta(minutes=10)
)
