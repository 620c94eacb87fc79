"""What every `peersync` command shares: settings loading and the one-line refusal."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import typer

from workers.settings import Settings, SettingsError, load_settings


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
