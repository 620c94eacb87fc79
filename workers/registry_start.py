"""How every process starts (or finds) its cluster's RegistryWorkflow: one id, one input, USE_EXISTING."""

from __future__ import annotations

from typing import Any

from temporalio.common import WorkflowIDConflictPolicy

from core.ids import registry_id
from core.registry_state import RegistryState
from workers.settings import Settings
from workflows.registry import RegistryInput


def registry_start_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for client.start_workflow(RegistryWorkflow.run, **these)."""
    return {
        "arg": RegistryInput(
            state=RegistryState(cluster_id=settings.cluster_id),
            refresh_seconds=settings.registry_refresh.total_seconds(),
        ),
        "id": registry_id(settings.cluster_id),
        "task_queue": settings.task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "static_summary": f"endpoint registry of cluster {settings.cluster_id}",
    }
