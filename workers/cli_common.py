"""What every `peersync` command shares: settings loading and the one-line refusal."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from workers.settings import Settings, SettingsError, load_settings
from workers.worker import StartError

T = TypeVar("T")
console = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@dataclass
class AppState:
    config_file: Path | None = None

    def settings(self) -> Settings:
        try:
            return load_settings(self.config_file)
        except SettingsError as exc:
            fail(str(exc))


def state(ctx: typer.Context) -> AppState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, AppState) else AppState()


def fail(reason: str, code: int = 1) -> NoReturn:
    """Refuse: one line on stderr, non-zero exit.

    Leaves with os._exit: a process that has used the Temporal client can crash in the SDK's runtime
    teardown at interpreter exit (reference/temporal.md, gotcha 9), which would turn a clean refusal
    into a core dump."""
    print(f"peersync: {' '.join(reason.split())}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def call(coro: Awaitable[T]) -> T:
    """Run one Temporal call; turn its refusals into one-line reasons."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except WorkflowUpdateFailedError as exc:
        # The validator's reason only: not "ValueError: ..." (the exception type travels as the failure's type).
        fail(f"refused: {getattr(exc.cause, 'message', None) or exc.cause}")
    except WorkflowFailureError as exc:
        fail(f"the workflow failed: {root_cause(exc)}")
    except WorkflowAlreadyStartedError as exc:
        fail(f"already running: {exc.workflow_id}")
    except RPCError as exc:
        fail(f"Temporal refused: {exc.message}")
    except ValidationError as exc:
        fail(f"invalid input: {exc.errors()[0]['msg']}")
    except RuntimeError as exc:  # the client could not connect (Client.connect raises RuntimeError)
        fail(f"cannot reach Temporal: {exc}")
    finally:
        # One-shot commands can crash in the SDK's runtime teardown at interpreter exit
        # (reference/temporal.md gotcha 9); flush and leave without running it.
        console.file.flush()


def serve(name: str, main: Coroutine[Any, Any, None]) -> None:
    """Run a long-running command (`worker`, `watch`) until a signal stops it.

    Anything else that ends it (it cannot start: Temporal unreachable, no such namespace, a failed start
    step; or a fatal error later) is one line on stderr and exit 1: never a traceback, and never a process
    that lingers after it (with /metrics still up it would look healthy). An unexpected error's traceback
    goes to the log first (it is a bug to report), then the one line.
    """
    try:
        asyncio.run(main)
        # Past this point the Temporal core's threads still run (and forward their logs into Python):
        # letting the interpreter finalize under them aborted a cleanly stopped worker now and then
        # ("PyGILState_Release ... finalizing", exit -6). Flush and leave without finalizing.
        logging.shutdown()
        leave(0)
    except StartError as exc:
        fail(str(exc))
    except Exception as exc:
        logging.getLogger(f"peersync.{name}").error("%s stopped", name, exc_info=True)
        reason = (
            f"Temporal refused: {exc.message}"
            if isinstance(exc, RPCError)
            else f"{type(exc).__name__}: {exc}"
        )
        fail(f"{name} stopped: {reason}")


def root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return getattr(exc, "message", None) or str(exc)


def leave(code: int = 0) -> NoReturn:
    """Finish a command (see `fail` for why not through interpreter exit)."""
    sys.stdout.flush()
    sys.stderr.flush()
    console.file.flush()
    os._exit(code)
