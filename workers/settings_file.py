"""The `--config` file: YAML, checked before any of it reaches the settings model.

A misspelt key must not be ignored (its setting would silently keep its default), and a broken file must
stop the command with one line naming the file, not a parser traceback.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml


class SettingsError(ValueError):
    """Settings that cannot be used; the message names every offending variable."""


def _unknown_key(key: str, path: Path, known: dict[str, str]) -> str:
    """The refusal of one unknown key, with the closest setting when there is one."""
    message = f"unknown setting {key!r} in {path}"
    is_temporal = key.lower().startswith("temporal_")
    # TEMPORAL_API_KEY & co. are close to TEMPORAL_ADDRESS, but meant as themselves: say where they go.
    close = difflib.get_close_matches(key.lower(), sorted(known), n=1, cutoff=0.85 if is_temporal else 0.6)
    if close:
        suggestion = close[0].upper() if key.isupper() else close[0]
        return f"{message} (did you mean {suggestion!r}?)"
    if is_temporal:
        return f"{message} (Temporal's own TEMPORAL_* client variables are read from the environment only)"
    return message


def read_config_file(path: Path, known: dict[str, str]) -> dict[str, Any]:
    """`known`: every key a setting may be written as (lower case) -> the setting's variable name.

    The settings of a `--config` YAML file; SettingsError (one line, naming the file) when it cannot be
    read, is not YAML, is not a mapping, or has a key that is no setting (a misspelt key must not be
    ignored: its setting would silently keep its default)."""
    if not path.is_file():
        raise SettingsError(f"--config {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # At the end of the stream the mark is on the line after the last one: name the last line instead.
        last = max(len(text.splitlines()), 1)
        where = f" at line {min(mark.line + 1, last)}" if mark is not None else ""
        reason = exc.problem or exc.context or type(exc).__name__
        if (
            exc.context
            and exc.context_mark is not None
            and mark is not None
            and exc.context_mark.line != mark.line
        ):
            reason += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise SettingsError(f"{path}: not valid YAML{where}: {reason}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (no mark: a position)
        line = text[: exc.position].count("\n") + 1
        reason = str(exc).splitlines()[0]
        raise SettingsError(f"{path}: not valid YAML at line {line}: {reason}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:  # empty, or only comments
        return {}
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a single value"}.get(type(data), f"a {type(data).__name__}")
        raise SettingsError(f"{path}: not a mapping of settings (NAME: value) but {kind}")
    problems = [_unknown_key(str(key), path, known) for key in data if str(key).lower() not in known]
    spellings: dict[str, list[str]] = {}
    for key in data:
        if str(key).lower() in known:
            spellings.setdefault(known[str(key).lower()], []).append(str(key))
    problems += [
        f"{name} is set {len(keys)} times in {path} ({', '.join(map(repr, keys))})"
        for name, keys in spellings.items()
        if len(keys) > 1
    ]
    if problems:
        raise SettingsError("; ".join(problems))
    return {str(key): value for key, value in data.items()}
