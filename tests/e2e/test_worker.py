"""The worker process: Prometheus metrics from the Temporal runtime, and a clean stop on SIGTERM."""

from __future__ import annotations

import signal

from devnet.ports import free_port
from devnet.testbed import World, eventually


async def test_worker_serves_metrics_and_stops_cleanly_on_sigterm(world: World) -> None:
    port = free_port()
    worker = await world.start_worker(PEERSYNC_METRICS_ADDRESS=f"127.0.0.1:{port}")

    async def metrics() -> str:
        try:
            async with world.http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
        except OSError:
            return ""
        # Slot metrics appear per task queue once the worker has polled it.
        ready = "temporal_worker_task_slots_available" in text and 'task_queue="peersync-alice"' in text
        return text if ready else ""

    await eventually(metrics, what="the worker's metrics for its task queue")

    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    assert await worker.wait() == 0
    log = (world.tmp / "worker-alice-0.log").read_text()
    assert "Traceback" not in log


async def test_temporal_tls_and_api_key_come_from_temporals_own_variables(world: World) -> None:
    """TEMPORAL_TLS / TEMPORAL_API_KEY (temporalio.envconfig) switch the client to TLS: against the devnet's
    plaintext server the handshake fails, which proves they were read; without them the same call connects."""
    for extra in ({"TEMPORAL_TLS": "true"}, {"TEMPORAL_API_KEY": "secret"}):
        code, _out, err = await world.peersync("registry", **extra)
        assert code == 1 and "cannot reach Temporal" in err, (extra, err)
    code, _out, err = await world.peersync("registry")
    assert "cannot reach Temporal" not in err, err
