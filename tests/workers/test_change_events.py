"""The event lines `status -w` and `update --wait` stream (workers/views.py), the probe line of the UI and
the tables (workflows/markdown.py), and the short ids of the change list (workers/cli_common.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.contracts import ConsumerStep, Phase, ProbeStatus, Progress
from workers.cli_common import short_change_id
from workers.views import change_events
from workflows.markdown import probe_summary

DEADLINE = datetime(2025, 1, 2, 4, 12, tzinfo=UTC)
BOB = "cosmosvaloper1qqqsyqcyq5rqwzqfpg9scrgwpugpzysn8xmx0j"


def progress(phase: Phase, **kw: object) -> Progress:
    return Progress(phase=phase, validator="bob", endpoint="1.2.3.4", **kw)  # type: ignore[arg-type]


def probing(attempts: int, error: str = "connection refused", passed: bool = False) -> Progress:
    probe = ProbeStatus(attempts=attempts, last_error=error, deadline=DEADLINE, passed=passed)
    return progress(Phase.PROBING, probe=probe)


def test_each_failed_probe_attempt_is_one_line_with_its_reason_and_the_deadline() -> None:
    first = probing(1)
    assert change_events(None, first) == [
        "probe attempt 1 failed: connection refused (deadline 04:12:00Z)",
        "phase probing",
    ]
    assert change_events(first, first) == []  # nothing new, nothing said
    third = probing(3, "the node at 1.2.3.4:26656 proved id a, expected b")
    assert change_events(probing(2), third) == [
        "probe attempt 3 failed: the node at 1.2.3.4:26656 proved id a, expected b (deadline 04:12:00Z)"
    ]
    assert change_events(first, third)[0].startswith("probe attempt 2-3 failed:")  # two between two looks
    assert change_events(third, probing(4, passed=True)) == ["probe passed at attempt 4"]


def test_phases_an_approval_a_pause_and_each_consumer_step_are_events() -> None:
    blocked = progress(Phase.BLOCKED, reason="unreachable; approve to force, or cancel")
    assert change_events(probing(3), blocked) == ["phase blocked: unreachable; approve to force, or cancel"]
    syncing = progress(Phase.SYNCING, consumers=[ConsumerStep(namespace="ns-1", chain_id="c-1")])
    assert change_events(blocked, syncing) == [
        "approval received (forced past the failed probe)",
        "phase syncing",
    ]
    awaiting = progress(Phase.AWAITING_APPROVAL, awaiting_approval=True)
    assert change_events(awaiting, syncing)[0] == "approval received"
    assert change_events(syncing, syncing.model_copy(update={"paused": True})) == [
        "paused (at the next step boundary)"
    ]
    running = ConsumerStep(namespace="ns-1", chain_id="c-1", step="sync", state="running")
    assert change_events(syncing, progress(Phase.SYNCING, consumers=[running])) == ["ns-1 (c-1): running"]
    assert change_events(syncing, progress(Phase.CANCELLED, reason="wrong IP")) == [
        "phase cancelled: wrong IP"
    ]


def test_the_probe_summary_says_attempts_last_error_next_attempt_and_deadline() -> None:
    status = ProbeStatus(
        attempts=2,
        last_error="connection refused",
        deadline=DEADLINE,
        next_attempt=datetime(2025, 1, 2, 4, 8, tzinfo=UTC),
    )
    assert probe_summary(status) == (
        "probe: 2 attempts, last failed: connection refused; next attempt 04:08:00Z; deadline 04:12:00Z"
    )


def test_a_short_id_drops_the_cluster_prefix_and_the_operator_address() -> None:
    assert short_change_id(f"endpoint-change-alice-{BOB}-57", "alice") == "57"
    assert (
        short_change_id(f"endpoint-change-alice-{BOB}-57-override-cleared-2", "alice")
        == "57-override-cleared-2"
    )
    assert short_change_id("endpoint-change-alice-manual-120-3", "alice") == "manual-120-3"
    assert short_change_id("endpoint-change-bob-manual-120-3", "alice") == "endpoint-change-bob-manual-120-3"
