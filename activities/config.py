"""What the activities need to know about the process that runs them, and nothing more.

The worker's Settings (workers/settings.py) hold every knob of every process: Temporal address, log format,
metrics, schedules. Activities read a handful of them; handing them this narrow, frozen model instead keeps
the layers one-way (activities never import workers/) and makes each activity's inputs visible and testable
without building process settings. `Settings.activity_config()` builds it.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ActivityConfig(BaseModel):
    """The settings the activities read; field names and meanings are those of the Settings they come from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster_id: str = Field(min_length=1)
    kubeconfig: Path | None = None  # None: in-cluster service account, else ~/.kube/config
    chain_rest_url: str = Field(min_length=1)
    bech32_prefix: str = Field(min_length=1)
    local_validator: str | None = None
    endpoint_allow_cidrs: tuple[Network, ...] = ()
    max_parallel_rollouts: int = Field(ge=1)
    require_approval: bool = False
    probe_budget: timedelta
    catch_up_deadline: timedelta

    @property
    def task_queue(self) -> str:
        # Derived the same way as Settings.task_queue: one cluster, one queue.
        return f"peersync-{self.cluster_id}"
