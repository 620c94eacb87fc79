"""Go's encoding/json error texts and `%v` renderings, as CometBFT's JSON-RPC server puts them in `data`.

A client sees these strings verbatim (`"data":"error unmarshaling request: …"`), so the emulator reproduces
Go's wording rather than Python's. Settled against a real node (CometBFT 0.38.17 inside
interchain-security-pd v7.0.1, tests/real/test_ws_fidelity.py):

* a websocket message is read with `json.NewDecoder(r).Decode(&request)`: an empty or blank message is
  `EOF`, a truncated one `unexpected EOF`, and anything after the first JSON value is ignored;
* a top-level value that is not an object fails inside `RPCRequest.UnmarshalJSON`, whose target is an
  anonymous struct, hence the long type name in `cannot unmarshal … into Go value of type struct {…}`;
  a top-level `null` leaves the id nil, so it is a notification and gets no reply at all;
* an id that is neither a string nor a number: `json-rpc ID (map[a:1]) is of unknown type (map[string]interface {})`;
* too many positional params print the `[]json.RawMessage` as byte lists: `got 2 ([[34 120 34] [49]])`.
"""

from __future__ import annotations

import json
from typing import Any

REQUEST_STRUCT = (
    'struct { JSONRPC string "json:\\"jsonrpc\\""; ID interface {} "json:\\"id,omitempty\\""; '
    'Method string "json:\\"method\\""; Params json.RawMessage "json:\\"params\\"" }'
)

# Python's json error text -> the scanner context Go names after "invalid character 'x' ".
_CONTEXT = {
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Invalid control character at": "in string literal",
    "Invalid \\escape": "in string escape code",
}


class GoJSONError(ValueError):
    """A decode failure; the text is Go's."""


def quote_char(char: str) -> str:
    """Go's scanner quoteChar: 'x', with the two quote characters special-cased."""
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return repr(char)


def value_error(err: json.JSONDecodeError, text: str) -> str:
    """`json.Unmarshal` of one value: a bad literal, a bad first character, or the end of the input."""
    if err.pos < len(text):
        for literal in ("null", "true", "false"):  # Go's scanner names the literal a letter started
            if text[err.pos] == literal[0]:
                rest = text[err.pos : err.pos + len(literal)]
                bad = next((i for i, c in enumerate(rest) if c != literal[i]), None)
                if bad is not None:
                    return (
                        f"invalid character {quote_char(rest[bad])} in literal {literal} "
                        f"(expecting {quote_char(literal[bad])})"
                    )
                if len(rest) < len(literal):
                    return "unexpected end of JSON input"
        return f"invalid character {quote_char(text[err.pos])} looking for beginning of value"
    return "unexpected end of JSON input"


def _innermost_container(text: str) -> str:
    """'{' or '[' open at the end of `text` (strings skipped), '' at the top level."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _reject_constant(name: str) -> Any:
    raise GoJSONError(f"invalid character {quote_char(name[0])} looking for beginning of value")


def decode_stream_value(text: str) -> Any:
    """`json.NewDecoder(strings.NewReader(text)).Decode(&v)`: the first JSON value of `text`."""
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise GoJSONError("EOF")
    try:
        value, _ = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(stripped)
    except json.JSONDecodeError as err:
        if err.pos >= len(stripped.rstrip(" \t\r\n")) or err.msg.startswith("Unterminated string"):
            raise GoJSONError("unexpected EOF") from None  # the stream ended inside the value
        char = quote_char(stripped[err.pos])
        if err.msg == "Expecting ',' delimiter":
            inside = _innermost_container(stripped[: err.pos])
            where = "after object key:value pair" if inside == "{" else "after array element"
            raise GoJSONError(f"invalid character {char} {where}") from None
        context = next((c for prefix, c in _CONTEXT.items() if err.msg.startswith(prefix)), None)
        if context is not None:
            raise GoJSONError(f"invalid character {char} {context}") from None
        raise GoJSONError(value_error(err, stripped)) from None
    return value


def go_type_name(value: Any) -> str:
    """The JSON kind Go names in `cannot unmarshal <kind> into …`."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def go_dynamic_type(value: Any) -> str:
    """`%T` of what encoding/json decodes into an `interface{}`."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


def go_value(value: Any) -> str:
    """`%v` of what encoding/json decodes into an `interface{}` (maps print their keys sorted)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(float(value))  # float64 %v: shortest repr, no trailing ".0"
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def raw_messages(values: list[Any]) -> str:
    """`%v` of a `[]json.RawMessage`: each element's JSON bytes as a list of decimal byte values."""
    rendered = (
        json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode() for v in values
    )  # the element as the client wrote it, compact: the common case
    return "[" + " ".join("[" + " ".join(str(b) for b in raw) + "]" for raw in rendered) + "]"
