"""The one resolver of "operator address or moniker", for the activity, the registry and the CLI.

An operator address names one validator; a moniker is chosen freely and may be shared, so it names a
validator only while exactly one carries it. Pure: callers pass their own rows and how to read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class UnknownValidatorError(KeyError):
    """No validator, or more than one, answers to the name. A KeyError (a failed lookup); str() is the
    reason alone, without KeyError's quotes, so callers can show it as is."""

    def __str__(self) -> str:
        return str(self.args[0])


def resolve_validator(
    rows: Iterable[T],
    name: str,
    operator_address: Callable[[T], str],
    moniker: Callable[[T], str],
) -> T:
    """The row whose operator address is `name`, else the one row whose moniker is `name`."""
    candidates = list(rows)
    by_address = [r for r in candidates if operator_address(r) == name]
    matches = by_address or [r for r in candidates if moniker(r) == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownValidatorError(f"no validator with operator address or moniker {name!r}")
    raise UnknownValidatorError(
        f"moniker {name!r} is used by {len(matches)} validators; name the operator address"
    )
