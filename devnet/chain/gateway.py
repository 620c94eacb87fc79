"""grpc-gateway v1 conventions of the SDK REST server (wire-formats §0, §2): google.rpc.Status error bodies
with HTTP codes mapped from gRPC codes, query-parameter decoding (proto or JSON field names, enums by name
or number, bytes as base64), and the SDK's FilteredPaginate semantics for `pagination.*`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web
from multidict import MultiMapping

from devnet.chain.encoding import b64, dumps

T = TypeVar("T")

# runtime.HTTPStatusFromCode
HTTP_STATUS = {
    0: 200,
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
}
INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED, INTERNAL = 3, 5, 12, 13
DEFAULT_LIMIT = 100


class GatewayError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        body = dumps({"code": self.code, "message": self.message, "details": []})
        return web.Response(
            text=body, status=HTTP_STATUS.get(self.code, 500), content_type="application/json"
        )


def invalid_argument(message: str) -> GatewayError:
    return GatewayError(INVALID_ARGUMENT, message)


def not_found(message: str) -> GatewayError:
    return GatewayError(NOT_FOUND, message)


def internal(message: str) -> GatewayError:
    return GatewayError(INTERNAL, message)


def json_ok(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def param(query: MultiMapping[str], path: str) -> str | None:
    """A query parameter by its proto path (`pagination.count_total`) or JSON path (`pagination.countTotal`)."""
    value = query.get(path)
    if value is None:
        value = query.get(".".join(_camel(part) for part in path.split(".")))
    return value


def _mismatch(name: str, detail: str) -> GatewayError:
    return invalid_argument(f"type mismatch, parameter: {name}, error: {detail}")


def uint64_param(query: MultiMapping[str], name: str) -> int | None:
    raw = param(query, name)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) >= 1 << 64:
        reason = "value out of range" if raw.isdigit() else "invalid syntax"
        raise _mismatch(name, f'strconv.ParseUint: parsing "{raw}": {reason}')
    return int(raw)


def bool_param(query: MultiMapping[str], name: str) -> bool:
    raw = param(query, name)
    if raw is None or raw == "":
        return False
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _mismatch(name, f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def bytes_param(query: MultiMapping[str], name: str) -> bytes | None:
    raw = param(query, name)
    if raw is None or raw == "":
        return None
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            continue
    raise _mismatch(name, "illegal base64 data at input byte 0")


def enum_param(value: str, name: str, names: Sequence[str]) -> int:
    """runtime.Enum: an enum by its name or its number."""
    if value in names:
        return names.index(value)
    if re.fullmatch(r"-?[0-9]+", value) and 0 <= int(value) < len(names):
        return int(value)
    # grpc-gateway v1 runtime.Enum's wording, as the real gateway answers (ICS v7.0.1, SDK 0.50).
    raise _mismatch(name, f"{value} is not valid")


@dataclass(frozen=True)
class PageRequest:
    key: bytes | None
    offset: int
    limit: int
    count_total: bool
    reverse: bool


def page_request(query: MultiMapping[str]) -> PageRequest:
    limit = uint64_param(query, "pagination.limit") or 0
    count_total = bool_param(query, "pagination.count_total")
    if limit == 0:
        # query.Paginate: an omitted limit means the default AND a counted total.
        limit, count_total = DEFAULT_LIMIT, True
    return PageRequest(
        key=bytes_param(query, "pagination.key"),
        offset=uint64_param(query, "pagination.offset") or 0,
        limit=limit,
        count_total=count_total,
        reverse=bool_param(query, "pagination.reverse"),
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_key: bytes | None
    total: int

    def pagination_json(self) -> str:
        next_key = dumps(b64(self.next_key)) if self.next_key else "null"
        return f'{{"next_key":{next_key},"total":"{self.total}"}}'


def filtered_paginate(
    store: Sequence[T],
    key_of: Callable[[T], bytes],
    matches: Callable[[T], bool],
    request: PageRequest,
    start_at: Callable[[bytes], int] | None = None,
) -> Page[T]:
    """types/query FilteredPaginate over `store` (already in store-key order).

    With a key: collect `limit` hits from that key on; next_key is the store key right after the last
    hit (possibly a non-matching entry, as on a real chain), and no total. With an offset: skip `offset`
    hits; next_key is the (offset+limit+1)-th hit's key; total only when counted.
    """
    if request.key is not None and request.offset > 0:
        raise internal("invalid request, either offset or key is expected, got both")
    entries: Sequence[T] = store[::-1] if request.reverse else store
    if request.key is not None:
        if request.reverse:
            start = next((i for i, e in enumerate(entries) if key_of(e) <= request.key), len(entries))
        elif start_at is not None:
            start = start_at(request.key)
        else:
            start = next((i for i, e in enumerate(entries) if key_of(e) >= request.key), len(entries))
        hits: list[T] = []
        next_key = None
        for position in range(start, len(entries)):
            entry = entries[position]
            if len(hits) == request.limit:
                next_key = key_of(entry)
                break
            if matches(entry):
                hits.append(entry)
        return Page(hits, next_key, 0)
    end = request.offset + request.limit
    hits = []
    next_key = None
    count = 0
    for entry in entries:
        if not matches(entry):
            continue
        if request.offset <= count < end:
            hits.append(entry)
        count += 1
        if count == end + 1:
            next_key = key_of(entry)
            if not request.count_total:
                break
    return Page(hits, next_key, count if request.count_total else 0)
