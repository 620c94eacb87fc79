"""The worker process: Prometheus metrics from the Temporal runtime, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from devnet.ports import free_port
from devnet.processes import ChildProcess
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


# ---- a worker that cannot work exits at start with one line (never a traceback, never a healthy-looking hang)


async def exit_code(child: ChildProcess, timeout: float = 30) -> int | None:
    """The child's exit code, or None if it is still running after `timeout` seconds."""
    try:
        return await asyncio.wait_for(child.wait(), timeout)
    except TimeoutError:
        return None


def one_line_reason(world: World, child: ChildProcess) -> str:
    """The one `peersync: ...` line a refused start leaves in the child's log (and no traceback)."""
    log = world.log_text(child)
    assert "Traceback" not in log, log
    reasons = [line for line in log.splitlines() if line.startswith("peersync: ")]
    assert len(reasons) == 1, log
    return reasons[0]


async def test_a_worker_in_a_namespace_that_does_not_exist_exits_at_once(world: World) -> None:
    """Before the fix the worker printed a traceback and kept running with /metrics up: a pod looked healthy."""
    port = free_port()
    worker = await world.start_worker(
        TEMPORAL_NAMESPACE="no-such-ns", PEERSYNC_METRICS_ADDRESS=f"127.0.0.1:{port}"
    )
    assert await exit_code(worker) == 1, world.log_text(worker)
    reason = one_line_reason(world, worker)
    address = world.manifest.temporal_address
    assert f'Temporal namespace "no-such-ns" does not exist at {address}' in reason, reason
    assert "temporal operator namespace create --namespace no-such-ns" in reason, reason


async def test_a_worker_that_cannot_reach_temporal_exits_with_one_line(world: World) -> None:
    worker = await world.start_worker(TEMPORAL_ADDRESS="127.0.0.1:1")
    assert await exit_code(worker) == 1, world.log_text(worker)
    reason = one_line_reason(world, worker)
    assert reason.startswith("peersync: cannot reach Temporal at 127.0.0.1:1: "), reason


BROKEN_START = """
import sys
import workers.worker
from workers.cli import main

async def refused(*args, **kwargs):
    raise RuntimeError("the registry could not be started")

workers.worker.ensure_registry = refused
sys.argv = ["peersync", "worker", "--no-schedule"]
main()
"""


async def test_any_failure_while_the_worker_starts_ends_it_with_one_line(world: World) -> None:
    """Whatever escapes while the worker starts (here: starting the registry workflow) ends the process with
    a non-zero exit and one line, instead of a traceback and a process that never exits."""
    port = free_port()
    child = ChildProcess(
        "worker-broken",
        [sys.executable, "-c", BROKEN_START],
        log_file=world.tmp / "worker-broken.log",
        env=world.env(PEERSYNC_METRICS_ADDRESS=f"127.0.0.1:{port}"),
    )
    await child.start()
    world.workers.append(child)  # stopped with the world if it hangs
    assert await exit_code(child) == 1, world.log_text(child)
    reason = one_line_reason(world, child)
    assert "the registry could not be started" in reason, reason
