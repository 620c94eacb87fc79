"""docs/settings.md is generated from the settings model; it must not go stale."""

from __future__ import annotations

from pathlib import Path

from workers.settings import Settings, setting_name
from workers.settings_reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert DOC.read_text() == render(), "docs/settings.md is stale: run `make docs`"


def test_every_setting_is_documented_with_a_meaning() -> None:
    text = render()
    for field, info in Settings.model_fields.items():
        assert f"| `{setting_name((field,))}` |" in text
        assert info.description, f"{field} has no description for the reference"
