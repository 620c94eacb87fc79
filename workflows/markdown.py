"""Chain text (monikers, reasons quoting published details, namespaces) in the markdown the Temporal UI
renders from `workflow.set_current_details`: anyone can publish a moniker such as "evil|**x**\\n| row",
and it must show as that text, inside its own table cell, never as a new cell, row or formatting.

Pure and deterministic: safe in workflow code.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.contracts import ProbeStatus

# Characters a renderer may read as markup (CommonMark's escapable ASCII punctuation that matters here),
# and the backslash itself, which must be escaped first so an escape in the input cannot cancel ours.
_MARKUP = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")
# Everything str.splitlines() breaks on: renderers differ on which of these end a line, so none stays.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
MAX_CELL = 500


def cell(text: object) -> str:
    """`text` as one markdown table cell (or inline text): markup escaped, line breaks made spaces, long
    text cut (a cell is a summary; the full text is in the query and the result)."""
    flat = _LINE_BREAKS.sub(" ", "" if text is None else str(text))
    if len(flat) > MAX_CELL:
        flat = flat[: MAX_CELL - 1] + "…"
    return _MARKUP.sub(r"\\\1", flat)


def row(*cells: object) -> str:
    """One table row of escaped cells."""
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def clock(at: datetime) -> str:
    """A UTC time as the probe lines show it: 04:12:00Z (the date adds nothing within a 5-minute budget)."""
    return f"{at.astimezone(UTC):%H:%M:%S}Z"


def probe_summary(status: ProbeStatus) -> str:
    """One plain line on the reachability gate while it retries, for the UI details and the CLI tables:
    attempts so far, the last error, when the next attempt runs, and the deadline."""
    if status.passed:
        return f"probe passed at attempt {status.attempts}"
    head = f"probe: {status.attempts} attempt{'' if status.attempts == 1 else 's'}"
    if status.last_error:
        head += f", last failed: {status.last_error}"
    nxt = f"; next attempt {clock(status.next_attempt)}" if status.next_attempt else ""
    return f"{head}{nxt}; deadline {clock(status.deadline)}"
