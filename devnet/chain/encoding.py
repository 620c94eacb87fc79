"""Value encodings shared by the CometBFT and gateway serializers (wire-formats §0).

CometBFT's cmtjson and the SDK's grpc-gateway agree on some rules (int64 as decimal strings, []byte as
base64) and differ on others (hashes are upper-case hex in CometBFT, times carry nanoseconds there but
only seconds in TxResponse.timestamp). Keeping the helpers here stops each module from re-deriving them.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upper_hex(data: bytes) -> str:
    return data.hex().upper()


# encoding/json's default HTML escaping, which cmtjson (RPC, websocket) and gogo jsonpb (REST) both inherit:
# a real node sends `\u003c` for `<` (e.g. in edit_validator.commission_rate; tests/real/test_ws_fidelity.py).
# Outside strings JSON never holds these characters, so replacing them in the whole text is safe.
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def dumps(value: Any) -> str:
    """Compact JSON, the way Go's encoding/json writes it (no spaces, UTF-8 kept, HTML characters escaped)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES)


class RawJSON(str):
    """A JSON text that is already encoded; response builders splice it instead of re-encoding."""


def now_ns() -> int:
    return time.time_ns()


def rfc3339_nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros trimmed (or none at all)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        stamp += "." + f"{frac:09d}".rstrip("0")
    return stamp + "Z"


def rfc3339_seconds(ns: int) -> str:
    """Go's time.RFC3339 in UTC, the TxResponse.timestamp format."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dec18(value: int | str) -> str:
    """A cosmos LegacyDec rendered with its 18 fractional digits, e.g. 100 -> '100.000000000000000000'."""
    text = str(value)
    if "." in text:
        whole, frac = text.split(".", 1)
        return f"{whole}.{frac.ljust(18, '0')[:18]}"
    return f"{text}.000000000000000000"
