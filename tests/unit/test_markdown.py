"""Chain text in the UI's markdown details stays inside its own table cell (workflows/markdown.py)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from workflows.markdown import MAX_CELL, cell, row

UNESCAPE = re.compile(r"\\(.)")
BREAKS = set("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def unescaped_pipes(text: str) -> list[int]:
    """Positions of `|` that a GFM table parser would take as a cell boundary (not backslash-escaped)."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "|":
            found.append(i)
        i += 1
    return found


@given(st.text())
def test_any_text_is_one_cell_that_cannot_end_the_cell_or_the_row(text: str) -> None:
    out = cell(text)
    assert len(out.splitlines()) <= 1  # no line break of any kind: the row cannot end
    assert unescaped_pipes(out) == []  # no bare pipe: the cell cannot end
    assert not out.endswith("\\") or out.endswith("\\\\")  # cannot escape the delimiter that follows
    if len(text) <= MAX_CELL and not BREAKS.intersection(text):
        assert UNESCAPE.sub(r"\1", out) == text  # nothing lost: the reader sees the text as published


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_a_row_has_exactly_its_cells(cells: list[str]) -> None:
    out = row(*cells)
    assert len(out.splitlines()) == 1
    assert len(unescaped_pipes(out)) == len(cells) + 1


def test_the_issue_example_is_inert() -> None:
    assert cell("evil|**x**\n| row") == r"evil\|\*\*x\*\* \| row"
    assert cell(None) == ""
    assert cell("a\\|b") == r"a\\\|b"  # an escape in the input cannot cancel ours
    assert len(cell("x" * 10_000)) == MAX_CELL
