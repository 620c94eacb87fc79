"""Child processes the devnet supervises: started as a group, stopped with SIGTERM then SIGKILL.

Each child asks the kernel to SIGTERM it when its parent dies (PR_SET_PDEATHSIG), so even a devnet that
is killed with SIGKILL leaves no orphan behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from pathlib import Path

STOP_GRACE_SECONDS = 15.0
FIRST_LINES = 8  # the first lines of a crash say why (a Go panic's goroutine dump follows them)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildExited(RuntimeError):
    pass


class ChildProcess:
    """One supervised child; output goes to `log_file` (or is discarded)."""

    def __init__(
        self, name: str, argv: list[str], log_file: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        self._log_offset = self.log_file.stat().st_size if self.log_file and self.log_file.exists() else 0
        out = open(self.log_file, "ab") if self.log_file else asyncio.subprocess.DEVNULL  # noqa: ASYNC230
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
                preexec_fn=_die_with_parent,
            )
        finally:
            if not isinstance(out, int):
                out.close()

    def output(self) -> str:
        """What this run (not earlier runs appending to the same log) has written so far."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        with open(self.log_file, "rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def raise_if_exited(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            where = f"; see {self.log_file}" if self.log_file else ""
            first = "".join(f"\n  | {line}" for line in self.output().splitlines()[:FIRST_LINES])
            raise ChildExited(f"{self.name} exited with code {self.proc.returncode}{where}{first}")

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()
