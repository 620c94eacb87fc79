"""CometBFT's JSON-RPC 2.0 server conventions (rpc/jsonrpc/server), shared by the provider RPC and the
emulated consumer nodes.

Three transports, three sets of rules (wire-formats §1):
* URI GET `/<method>?arg=…`: strings JSON-quoted or 0x-hex, ints bare or quoted, bools bare, arrays JSON;
  `"id":-1`; errors are HTTP 500 (bad arguments -32602, handler errors -32603).
* JSON-RPC POST `/`: params object or array; Go ints MUST be JSON strings; errors in an HTTP 200 body;
  requests without `id` are notifications and get no reply; a batch answers with an array (one reply: object).
* WebSocket: as POST, but bad params are -32603 and ws-only methods (subscribe…) are allowed.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aiohttp import web

from devnet.chain.encoding import RawJSON, dumps
from devnet.chain.go_json import go_dynamic_type, go_value, raw_messages, value_error

URI_ID = -1


class RPCError(Exception):
    def __init__(self, code: int, message: str, data: str = "") -> None:
        super().__init__(f"{code} {message}: {data}")
        self.code = code
        self.message = message
        self.data = data

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            body["data"] = self.data
        return body


def internal_error(data: str) -> RPCError:
    return RPCError(-32603, "Internal error", data)


def invalid_params(data: str) -> RPCError:
    return RPCError(-32602, "Invalid params", data)


def method_not_found() -> RPCError:
    return RPCError(-32601, "Method not found")


def parse_error(data: str) -> RPCError:
    # types.RPCParseError's message, checked against a real node (tests/real/test_ws_fidelity.py).
    return RPCError(-32700, "Parse error. Invalid JSON", data)


def invalid_request(data: str) -> RPCError:
    return RPCError(-32600, "Invalid Request", data)


def server_error(data: str) -> RPCError:
    return RPCError(-32000, "Server error", data)


class Kind(Enum):
    """The Go type of an RPC argument; decoding follows that type's cmtjson rules."""

    STR = "string"
    INT = "int"
    BOOL = "bool"
    STR_LIST = "[]string"
    BYTES = "[]byte"

    @property
    def go_kind(self) -> str:
        """reflect.Kind's name, as upstream error texts print it."""
        return "slice" if self.value.startswith("[]") else self.value


class ParamError(ValueError):
    """An argument that does not decode to its Go type; the text mimics Go's decoder errors."""


def decode_json_value(kind: Kind, value: Any) -> Any:
    """cmtjson.Unmarshal of an already-parsed JSON value into the Go type behind `kind`."""
    if value is None:
        return None
    if kind is Kind.INT:
        if not isinstance(value, str):
            raise ParamError(f'invalid 64-bit integer encoding "{dumps(value)}", expected string')
        if not re.fullmatch(r"-?[0-9]+", value):
            raise ParamError(
                f'invalid 64-bit integer value "{value}": strconv.ParseInt: parsing "{value}": invalid syntax'
            )
        return int(value)
    if kind is Kind.STR:
        if not isinstance(value, str):
            raise ParamError(f"json: cannot unmarshal {_json_type(value)} into Go value of type string")
        return value
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise ParamError(f"json: cannot unmarshal {_json_type(value)} into Go value of type bool")
        return value
    if kind is Kind.STR_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            # cmtjson decodes a slice through []json.RawMessage first (checked against cometbft v0.38.26).
            raise ParamError(
                f"json: cannot unmarshal {_json_type(value)} into Go value of type []json.RawMessage"
            )
        return value
    if not isinstance(value, str):
        raise ParamError(f"json: cannot unmarshal {_json_type(value)} into Go value of type []uint8")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ParamError("illegal base64 data at input byte 0") from None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def decode_uri_value(kind: Kind, raw: str) -> Any:
    """http_uri_handler's nonJSONStringToArg, then jsonStringToArg."""
    is_int = re.fullmatch(r"-?[0-9]+", raw) is not None
    is_quoted = raw.startswith('"') and raw.endswith('"')
    is_hex = raw.lower().startswith("0x")
    if is_int and kind is Kind.INT:
        return int(raw)
    if is_hex:
        if kind not in (Kind.STR, Kind.BYTES):
            raise ParamError(f"got a hex string arg, but expected '{kind.go_kind}'")
        try:
            data = bytes.fromhex(raw[2:])
        except ValueError:
            raise ParamError("encoding/hex: invalid byte in hex string") from None
        return data.decode("utf-8", "replace") if kind is Kind.STR else data
    if is_quoted and kind is Kind.BYTES:
        return _loads(raw).encode()
    return decode_json_value(kind, _loads(raw))


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ParamError(value_error(err, text)) from None


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind


@dataclass
class Call:
    """One method invocation: decoded arguments (None when absent) and, over websocket, its connection."""

    args: dict[str, Any]
    request_id: Any = URI_ID
    connection: Any = None
    http: web.Request | None = None


Handler = Callable[[Call], Any | Awaitable[Any]]


@dataclass
class Method:
    name: str
    params: tuple[Param, ...]
    handler: Handler
    ws_only: bool = False


def _encode_id(request_id: Any) -> str:
    return dumps(request_id)


def success(request_id: Any, result: Any) -> str:
    body = result if isinstance(result, RawJSON) else dumps(result)
    return f'{{"jsonrpc":"2.0","id":{_encode_id(request_id)},"result":{body}}}'


def failure(request_id: Any, error: RPCError, *, with_id: bool = True) -> str:
    id_part = f'"id":{_encode_id(request_id)},' if with_id else ""
    return f'{{"jsonrpc":"2.0",{id_part}"error":{dumps(error.body())}}}'


def json_response(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


@dataclass
class Registry:
    methods: dict[str, Method] = field(default_factory=dict)

    def add(self, name: str, handler: Handler, *params: Param, ws_only: bool = False) -> None:
        self.methods[name] = Method(name, tuple(params), handler, ws_only)

    # ---- argument decoding -------------------------------------------------------------------------------

    @staticmethod
    def uri_args(method: Method, query: Any) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for param in method.params:
            raw = query.get(param.name, "")
            args[param.name] = decode_uri_value(param.kind, raw) if raw != "" else None
        return args

    @staticmethod
    def json_args(method: Method, params: Any) -> dict[str, Any]:
        if params is None:
            return {p.name: None for p in method.params}
        if isinstance(params, dict):
            return {p.name: decode_json_value(p.kind, params.get(p.name)) for p in method.params}
        if isinstance(params, list):
            if len(params) != len(method.params):
                names = " ".join(p.name for p in method.params)
                raise ParamError(
                    f"expected {len(method.params)} parameters ([{names}]), got {len(params)} ({raw_messages(params)})"
                )
            return {p.name: decode_json_value(p.kind, v) for p, v in zip(method.params, params, strict=True)}
        raise ParamError(f"unknown type for JSON params: {_json_type(params)}. Expected map or array")

    @staticmethod
    async def invoke(method: Method, call: Call) -> Any:
        try:
            outcome = method.handler(call)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except RPCError:
            raise
        except ParamError as err:
            raise invalid_params(str(err)) from None
        except Exception as err:  # a handler bug must still answer like a node, not with a traceback
            raise internal_error(str(err) or type(err).__name__) from None
        return outcome

    # ---- transports --------------------------------------------------------------------------------------

    async def handle_uri(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        method = self.methods.get(name)
        if method is None:
            return web.Response(text="404 page not found\n", status=404, content_type="text/plain")
        if method.ws_only:
            return json_response(failure(URI_ID, method_not_found()), status=404)
        try:
            args = self.uri_args(method, request.query)
        except ParamError as err:
            error = invalid_params(f"error converting http params to arguments: {err}")
            return json_response(failure(URI_ID, error), status=500)
        try:
            result = await self.invoke(method, Call(args=args, http=request))
        except RPCError as err:
            return json_response(failure(URI_ID, err), status=500)
        return json_response(success(URI_ID, result))

    async def handle_post(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not body:
            return self.endpoint_list(request)
        try:
            decoded = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            error = parse_error(f"error unmarshaling request: {err}")
            return json_response(failure(None, error, with_id=False), status=500)
        batch = decoded if isinstance(decoded, list) else [decoded]
        replies: list[str] = []
        for item in batch:
            reply = await self.dispatch(item, connection=None, http=request)
            if reply is not None:
                replies.append(reply)
        if not replies:
            return web.Response(status=200)
        text = replies[0] if len(replies) == 1 else "[" + ",".join(replies) + "]"
        return json_response(text)

    async def dispatch(self, item: Any, *, connection: Any, http: web.Request | None = None) -> str | None:
        """One JSON-RPC request object -> its reply text, or None for a notification."""
        if not isinstance(item, dict):
            return failure(None, invalid_request("request is not a JSON object"), with_id=False)
        if "id" not in item or item["id"] is None:
            return None
        request_id = item["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, int | str | float):
            text = f"json-rpc ID ({go_value(request_id)}) is of unknown type ({go_dynamic_type(request_id)})"
            return failure(None, parse_error(f"error unmarshaling request: {text}"), with_id=False)
        if isinstance(request_id, float):
            request_id = int(request_id)
        method = self.methods.get(item.get("method") if isinstance(item.get("method"), str) else "")  # type: ignore[arg-type]
        over_ws = connection is not None
        if method is None or (method.ws_only and not over_ws):
            return failure(request_id, method_not_found())
        try:
            args = self.json_args(method, item.get("params"))
        except ParamError as err:
            text = f"error converting json params to arguments: {err}"
            return failure(request_id, internal_error(text) if over_ws else invalid_params(text))
        try:
            result = await self.invoke(
                method, Call(args=args, request_id=request_id, connection=connection, http=http)
            )
        except RPCError as err:
            return failure(request_id, err)
        return success(request_id, result)

    def endpoint_list(self, request: web.Request) -> web.Response:
        host = request.host
        plain = sorted(m.name for m in self.methods.values() if not m.params)
        with_args = sorted(m.name for m in self.methods.values() if m.params)
        parts = ["<html><body>", "<br>Available endpoints:<br>"]
        parts += [f'<a href="//{host}/{n}">//{host}/{n}</a></br>' for n in plain]
        parts.append("<br>Endpoints that require arguments:<br>")
        for name in with_args:
            query = "&".join(f"{p.name}=_" for p in self.methods[name].params)
            parts.append(f'<a href="//{host}/{name}?{query}">//{host}/{name}?{query}</a></br>')
        parts.append("</body></html>")
        return web.Response(text="".join(parts), content_type="text/html")

    async def _endpoint_list_get(self, request: web.Request) -> web.Response:
        return self.endpoint_list(request)

    def install(self, app: web.Application) -> None:
        """Routes: POST / (JSON-RPC), GET / (endpoint list) and GET|POST /<method> (URI)."""
        app.router.add_post("/", self.handle_post)
        app.router.add_get("/", self._endpoint_list_get)
        app.router.add_route("GET", "/{method}", self.handle_uri)
        app.router.add_route("POST", "/{method}", self.handle_uri)
