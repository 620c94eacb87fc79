"""Activities get a narrow config, not the process settings (issue 11, item 2), and the CLI's dry-run plan
reads the registry's pins itself, with the same "absent: chain decides; silent: refuse" rule as the sync."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.config import ActivityConfig
from activities.validation import ChangeRefused
from core.contracts import EndpointSnapshot
from workers.plan import registry_pins
from workers.settings import Settings
from workflows import policies


def _settings() -> Settings:
    return Settings(
        cluster_id="alice",
        kubeconfig=Path("/k/config"),
        chain_rest_url="http://127.0.0.1:1317",
        bech32_prefix="cosmos",
        local_validator="cosmosvaloper1alice",
        endpoint_allow_cidrs="127.0.10.0/24",
        max_parallel_rollouts=2,
        require_approval=True,
        probe_budget="90s",
        catch_up_deadline="5m",
        log_format="json",  # a process knob: not the activities' business
    )


def test_the_config_carries_exactly_what_the_activities_read() -> None:
    config = _settings().activity_config()
    assert config == ActivityConfig(
        cluster_id="alice",
        kubeconfig=Path("/k/config"),
        chain_rest_url="http://127.0.0.1:1317",
        bech32_prefix="cosmos",
        local_validator="cosmosvaloper1alice",
        endpoint_allow_cidrs=(ipaddress.ip_network("127.0.10.0/24"),),
        max_parallel_rollouts=2,
        require_approval=True,
        probe_budget=timedelta(seconds=90),
        catch_up_deadline=timedelta(minutes=5),
    )
    assert config.task_queue == _settings().task_queue == "peersync-alice"
    assert not hasattr(config, "log_format") and not hasattr(config, "temporal_address")


def test_the_config_is_frozen_and_refuses_unknown_fields() -> None:
    config = _settings().activity_config()
    with pytest.raises(ValidationError):
        config.cluster_id = "bob"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="temporal_address"):
        ActivityConfig.model_validate({**config.model_dump(), "temporal_address": "x:1"})


class _Client:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def get_workflow_handle(self, workflow_id: str) -> _Client:
        assert workflow_id == "registry-alice"
        return self

    async def query(self, name: str, **_: Any) -> Any:
        assert name == "pinned"
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


async def test_the_plan_takes_the_registry_pins_when_it_answers() -> None:
    held = EndpointSnapshot(overrides={"op-a": "1.2.4.1"})
    assert await registry_pins(_Client(held), "alice") == held  # type: ignore[arg-type]


async def test_without_temporal_or_registry_the_chain_alone_decides() -> None:
    gone = RPCError("workflow not found for ID: registry-alice", RPCStatusCode.NOT_FOUND, b"")
    assert await registry_pins(_Client(gone), "alice") == EndpointSnapshot(registry=False)  # type: ignore[arg-type]
    assert await registry_pins(None, "alice") == EndpointSnapshot(registry=False)


@pytest.mark.parametrize(
    "failure",
    [
        RPCError("context deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        WorkflowQueryFailedError("query handler raised"),
    ],
    ids=["timeout", "query-failed"],
)
async def test_a_registry_that_does_not_answer_refuses_the_plan(failure: Exception) -> None:
    with pytest.raises(ChangeRefused) as caught:
        await registry_pins(_Client(failure), "alice")  # type: ignore[arg-type]
    assert caught.value.kind == policies.REGISTRY_UNAVAILABLE
    assert caught.value.message.startswith("registry-alice did not answer: "), caught.value.message
