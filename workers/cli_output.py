"""`-o wide|yaml|json` of the commands that print a table, as kubectl's `--output`; a command's `--json`
stays an alias of `-o json` (scripts use it)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any, TextIO

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from workers.cli_common import console, fail

# `-o wide` as kubectl prints it: each row on one line, as wide as its cells, whatever the terminal's width
# (the terminal wraps long lines; the table does not fold ids and addresses into pieces).
WIDE_COLUMNS = 1000


class Output(StrEnum):
    WIDE = "wide"
    YAML = "yaml"
    JSON = "json"


OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="wide: the table with more columns; yaml or json: every field.",
        show_default=False,
    ),
]


def chosen(output: Output | None, as_json: bool) -> Output | None:
    """The format asked for (None: the table); `--json` with another -o is a contradiction, refused."""
    if as_json and output not in (None, Output.JSON):
        fail(f"--json and -o {output} ask for two formats: give one")
    return Output.JSON if as_json else output


def is_data(output: Output | None) -> bool:
    """JSON or YAML (for scripts) rather than a table (the default, or wide)."""
    return output in (Output.JSON, Output.YAML)


def print_data(data: Any, output: Output, file: TextIO | None = None) -> None:
    """`data` (JSON-ready: lists, dicts, strings, numbers) as JSON or YAML, in the order given."""
    out = file or sys.stdout
    if output == Output.YAML:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="", file=out, flush=True)
    else:
        print(json.dumps(data, indent=2), file=out, flush=True)


def print_model(model: BaseModel, output: Output, file: TextIO | None = None) -> None:
    print_data(model.model_dump(mode="json"), output, file)


def print_table(table: Table, output: Output | None) -> None:
    """The table, folded to the terminal's width; with `-o wide`, whole (WIDE_COLUMNS)."""
    if output == Output.WIDE:
        Console(width=WIDE_COLUMNS).print(table)
    else:
        console.print(table)
