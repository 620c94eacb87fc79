"""Deterministic workflow ids: the same thing asked twice lands on the same workflow."""

from __future__ import annotations


def registry_id(cluster_id: str) -> str:
    return f"registry-{cluster_id}"


def endpoint_change_id(cluster_id: str, operator_address: str, height: int) -> str:
    """One change per validator per chain height: the registry and the watcher compute the same id."""
    return f"endpoint-change-{cluster_id}-{operator_address}-{height}"


def override_cleared_id(cluster_id: str, operator_address: str, height: int, seq: int) -> str:
    """The change that takes a validator back to the chain's endpoint when its override is cleared (or its
    hold released)."""
    return f"{endpoint_change_id(cluster_id, operator_address, height)}-override-cleared-{seq}"


def manual_change_id(cluster_id: str, height: int, seq: int) -> str:
    """An operator's change (CLI `update`), numbered by the registry that starts it: one per request. Short
    (the validator is its search attribute): the registry's height keeps it unique across registries."""
    return f"endpoint-change-{cluster_id}-manual-{height}-{seq}"


def consumer_sync_id(cluster_id: str, namespace: str) -> str:
    return f"consumer-sync-{cluster_id}-{namespace}"


def cluster_of_task_queue(queue: str) -> str:
    """Workflows learn their cluster from the task queue they run on (peersync-<cluster_id>)."""
    return queue.removeprefix("peersync-")


def rollout_slots_id(cluster_id: str) -> str:
    return f"rollout-slots-{cluster_id}"
