"""The documentation names only commands, options and settings that exist.

Every line of a fenced code block in README.md and docs/*.md that starts with `peersync ` (after an
optional `$ `, `VAR=value` assignments or a path such as `.venv/bin/`) must name a real subcommand path of
the `peersync` CLI, and every `-x`/`--option` on it must belong to that command (or be a global option of
the root). Every `PEERSYNC_*` name anywhere in those files must be a real setting (the env name of a field
of workers.settings.Settings) or a variable that docker-compose.yml itself interpolates (`${NAME...}`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import AliasChoices

from workers.cli import app
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
# `$ `, then any `NAME=value` assignments, then `peersync` or a path ending in `/peersync`.
COMMAND_START = re.compile(r"^(?:\$\s+)?(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:\S*/)?peersync(?:\s|$)")
SEGMENT_SPLIT = re.compile(r"\s(?:&&|\|\||;|\|)\s|\s&\s*$")  # &&, ||, ;, | and a trailing &
SETTING_NAME = re.compile(r"\bPEERSYNC_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
COMPOSE_VARIABLE = re.compile(r"\$\{(PEERSYNC_[A-Z0-9_]+)")


# ---------------------------------------------------------------- what the docs say


def code_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block; `\\` continuations joined."""
    inside, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def command_lines(text: str) -> Iterator[tuple[int, str]]:
    """The `peersync ...` invocations in fenced code blocks (each shell segment of a line on its own)."""
    for number, line in code_lines(text):
        for segment in SEGMENT_SPLIT.split(line.strip()):
            if COMMAND_START.match(segment.strip()):
                yield number, segment.strip()


def words(command: str) -> list[str]:
    """The words after `peersync`, without a trailing comment, `[`/`]` of optional parts or `=value`."""
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError:  # an unbalanced quote in prose-like examples: fall back to whitespace
        tokens = command.split("#", 1)[0].split()
    while tokens and not re.fullmatch(r"(?:\S*/)?peersync", tokens[0]):
        tokens.pop(0)  # `$`, VAR=value
    out = []
    for token in tokens[1:]:
        token = token.strip("[]")
        if token.startswith("-"):
            token = token.split("=", 1)[0]
        if token:
            out.append(token)
    return out


# ---------------------------------------------------------------- what the CLI has
# Typer vendors its own click (typer._click), so commands and options are recognised by shape, not class:
# a group has `commands`, an option has param_type_name "option".

Command = Any


def is_group(command: Command) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _options(command: Command) -> Iterator[Any]:
    return (p for p in command.params if p.param_type_name == "option")


def option_names(command: Command) -> set[str]:
    names = {"--help"}
    for param in _options(command):
        names.update(param.opts, param.secondary_opts)
    return names


def takes_value(command: Command, name: str) -> bool:
    for param in _options(command):
        if name in (*param.opts, *param.secondary_opts):
            return not param.is_flag and not param.count
    return False


def check_command(command: str, root: Command | None = None) -> list[str]:
    """Why `command` (a `peersync ...` line) does not match the CLI; empty when it does."""
    root = root or typer.main.get_command(app)
    assert is_group(root)
    global_options = option_names(root)
    problems: list[str] = []
    targets: list[tuple[str, Command]] = [("peersync", root)]
    tokens = words(command)
    index = 0
    # Walk the group path: global options (with their values), then one subcommand per group level.
    # A word like `pause|resume|approve` stands for each alternative.
    while index < len(tokens) and all(is_group(c) for _, c in targets):
        token = tokens[index]
        index += 1
        if token.startswith("-"):
            # A group's own options (`peersync hold --validator V`), else the global ones.
            owner = next((c for _, c in targets if token in option_names(c)), None)
            if owner is None:
                problems.append(f"{token} is not a global option of peersync")
            elif takes_value(owner, token):
                index += 1
            continue
        resolved: list[tuple[str, Command]] = []
        for path, group in targets:
            for name in token.split("|"):
                sub = group.commands.get(name)
                if sub is None:
                    problems.append(f"`{path} {name}` is not a command")
                else:
                    resolved.append((f"{path} {name}", sub))
        if not resolved:
            return problems
        targets = resolved
    runnable = [c for _, c in targets if is_group(c) and not getattr(c, "invoke_without_command", False)]
    if runnable and not any(t in ("--help", "-h") for t in tokens):
        problems.append(f"`{command}` names no command")
        return problems
    for token in tokens[index:]:
        if not token.startswith("-") or token == "-":
            continue  # an argument or an option's value
        for path, target in targets:
            if token not in option_names(target) | global_options:
                problems.append(f"{token} is not an option of `{path}`")
    return problems


def setting_names() -> set[str]:
    names = set()
    for info in Settings.model_fields.values():
        alias = info.validation_alias
        assert isinstance(alias, AliasChoices), "every setting has its env name as first alias choice"
        names.add(str(alias.choices[0]))
    return names


def compose_variables() -> set[str]:
    compose = ROOT / "docker-compose.yml"
    return set(COMPOSE_VARIABLE.findall(compose.read_text())) if compose.is_file() else set()


def unknown_settings(text: str, known: set[str]) -> list[str]:
    return sorted({name for name in SETTING_NAME.findall(text) if name not in known})


# ---------------------------------------------------------------- the checks


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_documented_peersync_command_exists(doc: Path) -> None:
    root = typer.main.get_command(app)
    problems = [
        f"{_relative(doc)}:{number}: {problem}"
        for number, line in command_lines(doc.read_text())
        for problem in check_command(line, root)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_documented_setting_exists(doc: Path) -> None:
    unknown = unknown_settings(doc.read_text(), setting_names() | compose_variables())
    assert not unknown, f"{_relative(doc)} names settings that do not exist: {', '.join(unknown)}"


def test_the_docs_show_commands_at_all() -> None:
    found = [line for doc in DOCS for _, line in command_lines(doc.read_text())]
    assert len(found) >= 10, found  # guards the extraction itself (a broken regex would check nothing)
    assert any(line.startswith("peersync update") for line in found)


# ---------------------------------------------------------------- the checker catches mistakes


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("peersync frobnicate", "`peersync frobnicate` is not a command"),
        ("peersync update --validator bob --frob", "--frob is not an option of `peersync update`"),
        ("peersync status ID --watch --dry-run", "--dry-run is not an option of `peersync status`"),
        ("peersync schedule restart", "`peersync schedule restart` is not a command"),
        ("peersync schedule", "names no command"),
        ("peersync pause|resume|halt ID", "`peersync halt` is not a command"),
        ("$ peersync --verbose registry", "--verbose is not a global option"),
        ("peersync hold --frob bob", "--frob is not a global option"),
        ("peersync reconcile --dry-run=true --jsn  # comment --ignored", "--jsn is not an option"),
        ("PEERSYNC_LOG_FORMAT=json .venv/bin/peersync worker --no-schedul", "--no-schedul is not an option"),
    ],
)
def test_a_wrong_command_is_reported(line: str, complaint: str) -> None:
    problems = check_command(line)
    assert any(complaint in p for p in problems), problems


@pytest.mark.parametrize(
    "line",
    [
        "peersync --config peersync.yaml registry --json",
        "peersync -c peersync.yaml status -w endpoint-change-alice-x-1",
        "peersync pause|resume|approve ID",
        "peersync schedule apply|describe|pause|unpause|delete",
        'peersync cancel ID --reason "the operator\'s call"',
        "peersync update --validator bob --dry-run --json  # the plan, nothing changed",
        "PEERSYNC_REQUIRE_APPROVAL=true .venv/bin/peersync worker --no-schedule",
        "peersync schedule pause --note 'chain upgrade'",
        "peersync --help",
        "peersync hold --validator bob --reason maintenance",
        "peersync hold release --validator bob",
    ],
)
def test_a_right_command_passes(line: str) -> None:
    assert check_command(line) == []


def test_extraction_reads_fenced_blocks_only() -> None:
    text = "\n".join(
        [
            "peersync frobnicate  (prose, not checked)",
            "```sh",
            "$ peersync registry --json | jq '.[].status'",
            "source env && peersync status \\",
            "    --watch",
            "kubectl get ns  # not peersync",
            "peersync worker &",
            "```",
        ]
    )
    assert list(command_lines(text)) == [
        (3, "$ peersync registry --json"),
        (4, "peersync status      --watch"),
        (7, "peersync worker"),
    ]


def test_an_unknown_setting_is_reported() -> None:
    known = setting_names()
    assert unknown_settings("set `PEERSYNC_PROBE_BUDGET` and PEERSYNC_PROBE_TIMEOUT=5s", known) == [
        "PEERSYNC_PROBE_TIMEOUT"
    ]
    assert unknown_settings("`peersync_syncs_total` and `peersync_cluster` are metrics", known) == []
