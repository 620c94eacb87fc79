"""Set keys in the TOML files a Cosmos SDK / CometBFT `init` writes, keeping their comments and layout.

Line edits rather than a TOML library: the files are generated with one `key = value` per line, and Python
3.11 can read TOML but not write it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

TomlValue = str | int | bool

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_.-]+)(\s*=\s*).*$")


def _render(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def set_keys(path: Path, values: dict[str, dict[str, TomlValue]]) -> None:
    """`values[section][key] = value`; section "" is the top level. Every key must already exist: a typo
    (or a key renamed in a new release) must fail here, not silently leave the default."""
    wanted = {(section, key): value for section, keys in values.items() for key, value in keys.items()}
    section = ""
    out = []
    for line in path.read_text().splitlines():
        if found := _SECTION.match(line):
            section = found.group(1).strip()
        elif (found := _KEY.match(line)) and (section, found.group(2)) in wanted:
            key = found.group(2)
            line = f"{found.group(1)}{key}{found.group(3)}{_render(wanted.pop((section, key)))}"
        out.append(line)
    if wanted:
        raise KeyError(f"{path.name}: no such keys: {sorted(wanted)}")
    path.write_text("\n".join(out) + "\n")
