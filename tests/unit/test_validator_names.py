"""The one resolver of "operator address or moniker" (workflows/validator_names.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.validator_names import UnknownValidatorError, resolve_validator


@dataclass
class Row:
    operator_address: str
    moniker: str


ROWS = [
    Row("valoper1a", "alpha"),
    Row("valoper1b", "twin"),
    Row("valoper1c", "twin"),
    Row("valoper1d", "valoper1a"),
]


def resolve(name: str) -> Row:
    return resolve_validator(ROWS, name, lambda r: r.operator_address, lambda r: r.moniker)


def test_operator_address_wins_even_over_a_moniker_that_spells_it() -> None:
    assert resolve("valoper1a") is ROWS[0]


def test_a_unique_moniker_names_its_validator() -> None:
    assert resolve("alpha") is ROWS[0]


def test_a_shared_moniker_is_refused_with_how_many_carry_it() -> None:
    with pytest.raises(UnknownValidatorError) as exc:
        resolve("twin")
    assert str(exc.value) == "moniker 'twin' is used by 2 validators; name the operator address"


def test_an_unknown_name_is_refused_and_is_a_key_error() -> None:
    with pytest.raises(KeyError) as exc:
        resolve("nobody")
    assert str(exc.value) == "no validator with operator address or moniker 'nobody'"


def test_no_rows_resolve_nothing() -> None:
    with pytest.raises(UnknownValidatorError):
        resolve_validator([], "alpha", lambda r: r.operator_address, lambda r: r.moniker)
