"""peersync's own metrics on the worker's Prometheus endpoint, beside the Temporal SDK's (docs/metrics.md)."""

from __future__ import annotations

from core.contracts import EndpointChangeResult, Phase
from core.ids import endpoint_change_id
from devnet.ports import free_port
from devnet.testbed import World, eventually


async def test_a_move_shows_up_in_the_worker_metrics(world: World) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    await world.start_worker(PEERSYNC_METRICS_ADDRESS=url.removeprefix("http://"))
    await world.registry_ready()
    # carol publishes an endpoint the policy refuses: the registry gauge counts her as invalid.
    await world.registry_sees("carol", await world.edit_validator("carol", "p2p=10.0.0.1"))

    height = await world.edit_validator("bob", f"p2p={world.subnet}.22")
    result = await world.finished(
        endpoint_change_id("alice", world.operator("bob"), height), EndpointChangeResult
    )
    assert result.phase == Phase.DONE

    async def scraped() -> dict[str, float] | None:
        samples = await world.scrape(url)
        return samples if _value(samples, "peersync_endpoint_changes_total", phase="done") else None

    samples = await eventually(scraped, what="the endpoint change counted")

    def value(name: str, **labels: str) -> float:
        found = _value(samples, name, **labels)
        assert found is not None, (
            f"no {name} {labels} in {sorted(k for k in samples if k.startswith('peersync'))}"
        )
        return found

    assert value("peersync_endpoint_changes_total", phase="done") == 1
    for chain in ("consumer-1", "consumer-2"):
        assert value("peersync_syncs_total", chain_id=chain, result="restarted") == 1
        assert value("peersync_restarts_total", chain_id=chain) == 1
        assert value("peersync_rollout_duration_seconds_count", chain_id=chain) == 1
        assert value("peersync_rollout_duration_seconds_sum", chain_id=chain) > 0
        # The rollout buckets are the ones for minutes-long rollouts, not the SDK's RPC latencies.
        assert value("peersync_rollout_duration_seconds_bucket", chain_id=chain, le="3600") == 1
    assert value("peersync_registry_validators", status="invalid") == 1
    assert value("peersync_registry_validators", status="valid") == 3
    assert value("peersync_registry_validators", status="missing") == 0
    # The SDK's own metrics share the endpoint.
    assert value("temporal_workflow_completed_total", workflow_type="EndpointChangeWorkflow") >= 1


async def test_an_unreachable_endpoint_counts_probe_failures(world: World) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    await world.start_worker(
        PEERSYNC_METRICS_ADDRESS=url.removeprefix("http://"), PEERSYNC_PROBE_BUDGET="30s"
    )
    await world.registry_ready()
    await world.edit_validator("bob", f"p2p={world.subnet}.23", reachable=False)

    async def failures() -> float | None:
        found = _value(await world.scrape(url), "peersync_probe_failures_total", target="endpoint")
        return found if found is not None and found >= 2 else None

    assert await eventually(failures, what="two failed probes of bob's new endpoint") >= 2


def _value(samples: dict[str, float], name: str, **labels: str) -> float | None:
    """The sum over the series of `name` carrying `labels` (and the worker's cluster tag); None if none."""
    want = {f'{k}="{v}"' for k, v in labels.items()} | {'peersync_cluster="alice"'}
    found = [v for k, v in samples.items() if k.split("{")[0] == name and want <= _labels(k)]
    return sum(found) if found else None


def _labels(key: str) -> set[str]:
    inner = key.partition("{")[2].rstrip("}")
    return set(inner.split(",")) if inner else set()
