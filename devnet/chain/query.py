"""CometBFT 0.38 event query language: parser and matcher (internal/pubsub/query).

Grammar: one or more conditions joined by `AND`; a condition is `tag OP arg` or `tag EXISTS`, with OP one of
`= < <= > >= CONTAINS`, and arg a 'single-quoted string', a number, `TIME <rfc3339>` or `DATE <yyyy-mm-dd>`.
Tags are letters, digits, '.' and '_'. Matching follows upstream: a condition holds when ANY value of its
composite key satisfies it; a tag that equals an event type matches against "" (type-only EXISTS); numbers
compare numerically after stripping a non-numeric suffix ("8atom" is 8); a query never matches no events.
Error texts copy upstream's so `failed to parse query: …` reads like a real node's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum


class QueryError(ValueError):
    """The text is not a valid query (message is upstream's, without the `failed to parse query:` prefix)."""


class Tok(Enum):
    INVALID = "invalid token"
    TAG = "tag"
    STRING = "string"
    NUMBER = "number"
    TIME = "timestamp"
    DATE = "datestamp"
    AND = "AND operator"
    CONTAINS = "CONTAINS operator"
    EXISTS = "EXISTS operator"
    EQ = "= operator"
    LT = "< operator"
    LEQ = "<= operator"
    GT = "> operator"
    GEQ = ">= operator"


T_AND_ORDINAL = list(Tok).index(Tok.AND)  # 6: upstream's scanner.go declares the tokens in this order


@dataclass(frozen=True)
class _Token:
    kind: Tok
    text: str
    pos: int


def _is_tag_char(ch: str) -> bool:
    return ch == "." or ch == "_" or ch.isalpha() or ch.isdigit()


_TIME_CHARS = frozenset("0123456789-T:+Z")
_DATE_CHARS = frozenset("0123456789-")


def _parse_time(text: str) -> datetime:
    # Go's time.RFC3339 requires a zone; Python's fromisoformat accepts 'Z' since 3.11.
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", text):
        raise ValueError(f'parsing time "{text}" as RFC3339: cannot parse')
    return datetime.fromisoformat(text)


def _parse_date(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f'parsing time "{text}" as "2006-01-02": cannot parse')
    return date.fromisoformat(text)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def next(self) -> _Token | None:
        text = self.text
        while self.i < len(text) and text[self.i].isspace():
            self.i += 1
        if self.i >= len(text):
            return None
        start = self.i
        ch = text[start]
        if ch.isdigit():
            return self._number(start)
        if _is_tag_char(ch):
            return self._tag_like(start)
        if ch == "'":
            end = text.find("'", start + 1)
            if end < 0:
                raise QueryError(f"offset {start}: unexpected EOF")
            self.i = end + 1
            return _Token(Tok.STRING, text[start + 1 : end], start)
        if ch in "<>=":
            self.i += 1
            if ch == "=":
                return _Token(Tok.EQ, "=", start)
            if self.i < len(text) and text[self.i] == "=":
                self.i += 1
                return _Token(Tok.LEQ if ch == "<" else Tok.GEQ, ch + "=", start)
            return _Token(Tok.LT if ch == "<" else Tok.GT, ch, start)
        raise QueryError(f"offset {start}: invalid input {ch} at offset {start + 1}")

    def _number(self, start: int) -> _Token:
        text = self.text
        i = start
        while i < len(text) and text[i].isdigit():
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            while i < len(text) and text[i].isdigit():
                i += 1
        self.i = i
        return _Token(Tok.NUMBER, text[start:i], start)

    def _tag_like(self, start: int) -> _Token:
        text = self.text
        i = start
        while i < len(text) and _is_tag_char(text[i]):
            i += 1
        word = text[start:i]
        self.i = i
        followed_by_space = i < len(text) and text[i] == " "
        if word in ("TIME", "DATE") and followed_by_space:
            allowed = _TIME_CHARS if word == "TIME" else _DATE_CHARS
            j = i + 1
            while j < len(text) and text[j] in allowed:
                j += 1
            value = text[i + 1 : j]
            self.i = j
            try:
                parsed = _parse_time(value) if word == "TIME" else _parse_date(value)
            except ValueError as err:
                raise QueryError(f"offset {start}: invalid {word} value: {err}") from None
            if not 1900 <= parsed.year <= 2999:
                kind = "timestamp" if word == "TIME" else "datestamp"
                raise QueryError(f"offset {start}: {kind} year {parsed.year} out of range")
            return _Token(Tok.TIME if word == "TIME" else Tok.DATE, value, start)
        kind = {"AND": Tok.AND, "EXISTS": Tok.EXISTS, "CONTAINS": Tok.CONTAINS}.get(word, Tok.TAG)
        return _Token(kind, word, start)


def _label(kinds: Sequence[Tok]) -> str:
    if len(kinds) == 1:
        return kinds[0].value
    return ", ".join(k.value for k in kinds[:-1]) + " or " + kinds[-1].value


_COMPARISONS = (Tok.LEQ, Tok.GEQ, Tok.LT, Tok.GT, Tok.EQ, Tok.CONTAINS, Tok.EXISTS)
_NUMERIC_PREFIX = re.compile(r"^\d+(\.\d+)?")


def _number(value: str) -> Decimal | None:
    try:
        return Decimal(value) if re.fullmatch(r"-?\d+", value) else Decimal(_NUMERIC_PREFIX.match(value)[0])  # type: ignore[index]
    except (TypeError, InvalidOperation):
        return None


@dataclass(frozen=True)
class Condition:
    tag: str
    op: Tok
    arg_kind: Tok | None
    arg: str

    def __str__(self) -> str:
        op_text = {Tok.CONTAINS: "CONTAINS", Tok.EXISTS: "EXISTS"}.get(self.op) or self.op.value.split(" ")[0]
        if self.arg_kind is None:
            return f"{self.tag} {op_text}"
        arg = {Tok.STRING: f"'{self.arg}'", Tok.TIME: f"TIME {self.arg}", Tok.DATE: f"DATE {self.arg}"}.get(
            self.arg_kind, self.arg
        )
        return f"{self.tag} {op_text} {arg}"

    def predicate(self) -> Callable[[str], bool]:
        op, kind, arg = self.op, self.arg_kind, self.arg
        if op is Tok.EXISTS:
            return lambda _value: True
        if kind is Tok.STRING:
            if op is Tok.CONTAINS:
                return lambda value: arg in value
            return lambda value: value == arg
        if kind is Tok.NUMBER:
            want = Decimal(arg)
            compare = _ORDERINGS[op]
            return lambda value: (got := _number(value)) is not None and compare(got, want)
        parse: Callable[[str], datetime | date] = _parse_time if kind is Tok.TIME else _parse_date
        want_t = parse(arg)
        compare_t = _ORDERINGS[op]

        def matches_time(value: str) -> bool:
            try:
                return compare_t(parse(value), want_t)
            except (ValueError, TypeError):
                return False

        return matches_time


_ORDERINGS: dict[Tok, Callable[[object, object], bool]] = {
    Tok.EQ: lambda a, b: a == b,
    Tok.LT: lambda a, b: a < b,  # type: ignore[operator]
    Tok.LEQ: lambda a, b: a <= b,  # type: ignore[operator]
    Tok.GT: lambda a, b: a > b,  # type: ignore[operator]
    Tok.GEQ: lambda a, b: a >= b,  # type: ignore[operator]
}


class Query:
    """A compiled query. `str(query)` is upstream's canonical form, used as the subscription key."""

    def __init__(self, conditions: list[Condition]) -> None:
        self.conditions = conditions
        self._compiled = [(c.tag, c.predicate()) for c in conditions]

    def __str__(self) -> str:
        return " AND ".join(str(c) for c in self.conditions)

    def __repr__(self) -> str:
        return f"Query({str(self)!r})"

    def matches(self, events: Mapping[str, Sequence[str]], event_types: frozenset[str] | None = None) -> bool:
        """`events` is the flattened `"<type>.<key>" -> [values]` map CometBFT publishes with every event."""
        if not events:
            return False
        types = event_types if event_types is not None else event_types_of(events)
        for tag, predicate in self._compiled:
            values = events.get(tag)
            if values:
                if not any(predicate(v) for v in values):
                    return False
            elif tag in types:
                if not predicate(""):
                    return False
            else:
                return False
        return True

    def value_for(self, tag: str) -> str | None:
        """The string argument of an `tag = '…'` condition, for index lookups (e.g. tx.hash)."""
        for c in self.conditions:
            if c.tag == tag and c.op is Tok.EQ and c.arg_kind is Tok.STRING:
                return c.arg
        return None


def event_types_of(events: Mapping[str, Sequence[str]]) -> frozenset[str]:
    return frozenset(key.rpartition(".")[0] for key in events)


def parse_query(text: str) -> Query:
    scanner = _Scanner(text)

    def require(*kinds: Tok) -> _Token:
        pos = scanner.i
        token = scanner.next()
        if token is None:
            raise QueryError(f"offset {pos}: EOF")
        if token.kind not in kinds:
            raise QueryError(f"offset {token.pos}: got {token.kind.value}, wanted {_label(kinds)}")
        return token

    def condition() -> Condition:
        tag = require(Tok.TAG)
        op = require(*_COMPARISONS)
        if op.kind is Tok.EXISTS:
            return Condition(tag.text, op.kind, None, "")
        if op.kind in (Tok.LEQ, Tok.GEQ, Tok.LT, Tok.GT):
            arg = require(Tok.NUMBER, Tok.TIME, Tok.DATE)
        elif op.kind is Tok.EQ:
            arg = require(Tok.NUMBER, Tok.TIME, Tok.DATE, Tok.STRING)
        else:
            arg = require(Tok.STRING)
        return Condition(tag.text, op.kind, arg.kind, arg.text)

    conditions = [condition()]
    while (token := scanner.next()) is not None:
        if token.kind is not Tok.AND:
            # Upstream formats the wanted token with %v of an untyped iota constant (TAnd), so a real node
            # says "want 6", not "want AND operator" (measured, tests/real/test_ws_fidelity.py).
            raise QueryError(f"offset {token.pos}: got {token.kind.value}, want {T_AND_ORDINAL}")
        conditions.append(condition())
    return Query(conditions)
