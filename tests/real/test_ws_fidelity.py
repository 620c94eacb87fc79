"""Emulator fidelity, measured (issue 10, item 7, websocket part): the CometBFT `/websocket` that peersync's
watcher reads, on the real provider chain (interchain-security-pd v7.0.1, CometBFT 0.38.17) and on the
chain emulator, compared field by field.

Each side gets the same session: the watcher's own subscriptions (`workers.watcher.QUERIES`, same ids, same
order), the same query again, bad queries, malformed requests and the subscription limits, then one real
MsgEditValidator by bob, whose Tx event frame is compared after normalising what legitimately differs
between two chains (addresses and keys become `<moniker.kind>` labels, heights, hashes, gas numbers and
signatures placeholders; the base64 tx bytes are decoded and compared as a Tx). Replies carry no such
values, so they must be equal byte for byte. The reference notes' [D]/[U] claims about this frame that the
real chain settles are asserted on the real frame below.

One real chain and one emulator for the module (about 10 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import websockets
from cosmpy.protos.cosmos.tx.v1beta1 import tx_pb2 as txv1
from google.protobuf.json_format import MessageToDict

from core.addresses import valoper_to_account
from devnet.chain.server import ChainEmulator
from devnet.loop_thread import serve_in_thread
from devnet.real.chain import FOLLOWER_STAKE, LEADER_STAKE, RealProvider
from devnet.real.chain import ValidatorSpec as RealValidatorSpec
from devnet.scenario import Scenario
from devnet.scenario import ValidatorSpec as EmuValidatorSpec
from tests.chain.conftest import _free_subnet
from tests.real.compare import differences
from workers.watcher import QUERIES, parse_event

pytestmark = [pytest.mark.real, pytest.mark.asyncio(loop_scope="module")]

PREFIX = "cosmos"
MONIKERS = ["alice", "bob", "carol", "dave"]
EDIT_QUERY = QUERIES[1]  # the watcher's MsgEditValidator subscription
REPLY_TIMEOUT = 10.0
EVENT_TIMEOUT = 40.0  # the real tx goes through the CLI, CheckTx and the next block

BAD_QUERIES = {
    "truncated": "tm.event='Tx' AND",
    "empty": "",
    "unquoted value": "message.action=/cosmos.staking.v1beta1.MsgEditValidator",
    "double equals": "tm.event=='Tx'",
    "lower-case and": "tm.event='Tx' and message.action='x'",
    "too long": "tm.event='Tx' AND message.action='" + "x" * 600 + "'",
}
# Frames a broken client could send; none subscribes to anything.
MALFORMED = {
    "not json": "{bad json",
    "empty message": "",
    "blank message": "  ",
    "truncated array": "[1,2",
    "truncated object": '{"jsonrpc":"2.0","id":1,"method":"subscribe"',
    "missing comma": '{"jsonrpc":"2.0" "id":1}',
    "missing colon": '{"jsonrpc" "2.0"}',
    "unterminated string": '{"jsonrpc":"2.',
    "bad literal": '{"jsonrpc":"2.0","id":tru}',
    "batch": '[{"jsonrpc":"2.0","id":5,"method":"health"}]',
    "string": '"subscribe"',
    "number": "5",
    "object id": '{"jsonrpc":"2.0","id":{"a":1},"method":"health"}',
    "array id": '{"jsonrpc":"2.0","id":[1,"x"],"method":"health"}',
    "bool id": '{"jsonrpc":"2.0","id":true,"method":"health"}',
    "fractional id": '{"jsonrpc":"2.0","id":1.5,"method":"health"}',
    "trailing bytes": '{"jsonrpc":"2.0","id":"t","method":"health"} trailing',
    "unknown method": '{"jsonrpc":"2.0","id":6,"method":"nope"}',
    "query not a string": '{"jsonrpc":"2.0","id":7,"method":"subscribe","params":{"query":5}}',
    "two positional params": '{"jsonrpc":"2.0","id":8,"method":"subscribe","params":["tm.event=\'Tx\'","x"]}',
    "unsubscribe unknown": '{"jsonrpc":"2.0","id":9,"method":"unsubscribe","params":{"query":"tm.event=\'Tx\'"}}',
    "unsubscribe_all, none": '{"jsonrpc":"2.0","id":10,"method":"unsubscribe_all"}',
}
# Frames a node must not answer at all (JSON-RPC notifications): each is followed by a marker request, and
# the next frame on the socket has to be the marker's reply.
SILENT = {"no id": '{"jsonrpc":"2.0","method":"health"}', "null": "null", "empty object": "{}"}


# ---- the two worlds --------------------------------------------------------------------------------------


@dataclass
class Side:
    """One chain's websocket session, recorded: every reply (raw text) by name, and the edit's Tx event."""

    name: str
    rpc_url: str
    labels: dict[str, str] = field(default_factory=dict)  # address -> "<moniker.kind>"
    accounts: dict[str, str] = field(default_factory=dict)  # moniker -> cosmos1...
    replies: dict[str, str] = field(default_factory=dict)
    event: str = ""

    @property
    def ws_url(self) -> str:
        return self.rpc_url.replace("http://", "ws://") + "/websocket"  # as the watcher derives it

    async def learn_labels(self, http: aiohttp.ClientSession, rest_url: str) -> None:
        async with http.get(f"{rest_url}/cosmos/staking/v1beta1/validators") as resp:
            body = await resp.json(content_type=None)
        for v in body["validators"]:
            moniker, operator = v["description"]["moniker"], v["operator_address"]
            account = valoper_to_account(operator, PREFIX)
            self.accounts[moniker] = account
            self.labels[operator] = f"<{moniker}.operator>"
            self.labels[account] = f"<{moniker}.account>"


@dataclass
class Worlds:
    real: Side
    emu: Side


def _request(request_id: Any, method: str, params: Any = None) -> str:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        body["params"] = params
    return json.dumps(body)


async def _call(ws: Any, text: str) -> str:
    await ws.send(text)
    return str(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT))


async def record(side: Side, edit: Any) -> None:
    """The same session on `side`; `edit()` makes bob's MsgEditValidator and returns once committed."""
    async with websockets.connect(side.ws_url) as main, websockets.connect(side.ws_url) as spare:
        # The watcher's session, request for request (workers/watcher.py Watcher._session).
        for sub_id, query in QUERIES.items():
            side.replies[f"subscribe {sub_id}"] = await _call(
                main, _request(sub_id, "subscribe", {"query": query})
            )
        side.replies["same query again"] = await _call(main, _request(3, "subscribe", {"query": EDIT_QUERY}))
        respaced = EDIT_QUERY.replace("=", " = ").replace(" AND ", "   AND ")
        side.replies["same query, respaced"] = await _call(
            main, _request(4, "subscribe", {"query": respaced})
        )
        side.replies["same query, array params"] = await _call(main, _request(5, "subscribe", [EDIT_QUERY]))
        for name, query in BAD_QUERIES.items():
            side.replies[f"bad query: {name}"] = await _call(
                main, _request(name, "subscribe", {"query": query})
            )
        # Everything else on a second connection, which never subscribes to anything the edit matches.
        for name, text in MALFORMED.items():
            side.replies[f"malformed: {name}"] = await _call(spare, text)
        for name, text in SILENT.items():
            await spare.send(text)
            side.replies[f"silent: {name}"] = await _call(spare, _request(f"after {name}", "health"))
        for n in range(5):
            never = f"tm.event='Tx' AND message.action='/never.{n}'"
            side.replies[f"limit: subscription {n + 1}"] = await _call(
                spare, _request(100 + n, "subscribe", {"query": never})
            )
        side.replies["limit: subscription 6"] = await _call(
            spare, _request(106, "subscribe", {"query": "tm.event='NewBlock'"})
        )
        side.replies["unsubscribe_all"] = await _call(spare, _request(107, "unsubscribe_all"))
        await edit()
        side.event = str(await asyncio.wait_for(main.recv(), EVENT_TIMEOUT))


def _details(net: str, index: int) -> str:
    return f"p2p={net}.{index}:26656"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worlds(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worlds]:
    net = _free_subnet()
    moved = f"p2p={net}.42:26656"
    validators = [
        EmuValidatorSpec(
            moniker=m, details=_details(net, i), tokens=LEADER_STAKE if i == 1 else FOLLOWER_STAKE
        )
        for i, m in enumerate(MONIKERS, start=1)
    ]
    emulator = ChainEmulator(Scenario(allow_cidrs=[f"{net}.0/24"], block_time=0.5, validators=validators))
    specs = [RealValidatorSpec(moniker=m, details=_details(net, i)) for i, m in enumerate(MONIKERS, start=1)]
    with serve_in_thread(emulator):
        async with (
            RealProvider(Path(tmp_path_factory.mktemp("ws-fidelity")), specs) as chain,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
        ):
            print(f"real provider up in {chain.startup_seconds:.1f} s")
            real = Side("real", chain.info.rpc_url)
            emu = Side("emulator", emulator.rpc_url)
            await real.learn_labels(http, chain.info.rest_url)
            await emu.learn_labels(http, emulator.rest_url)

            async def real_edit() -> None:
                await chain.edit_validator("bob", moved)

            async def emu_edit() -> None:
                body = {"validator": "bob", "details": moved}
                async with http.post(f"{emulator.rpc_url}/devnet/edit_validator", json=body) as resp:
                    assert resp.status == 200, await resp.text()

            await asyncio.gather(record(real, real_edit), record(emu, emu_edit))
            yield Worlds(real, emu)


# ---- normalisation ---------------------------------------------------------------------------------------

_B64 = re.compile(r"^[A-Za-z0-9+/]{16,}={0,2}$")
_PROTO_TIME = re.compile(r"update_time:<seconds:\d+ (nanos:\d+ )?>")
# Per-chain facts, not wire format: heights, hashes and gas (RealProvider signs with --gas 1000000, the
# emulator with the CLI's default 200000; gas used depends on the store's size).
_VOLATILE = {"height", "tx.height", "tx.hash", "gas_wanted", "gas_used", "gas_limit"}
_EXACT = {"data"}  # TxMsgData: the same bytes on both chains, compared as they are


def decode_tx(raw_b64: str) -> dict[str, Any]:
    """The TxRaw behind the event's `tx`, as a dict: the chains sign different bytes, not different txs."""
    raw = txv1.TxRaw.FromString(base64.b64decode(raw_b64))
    return {
        "body": MessageToDict(txv1.TxBody.FromString(raw.body_bytes), preserving_proto_field_name=True),
        "auth_info": MessageToDict(
            txv1.AuthInfo.FromString(raw.auth_info_bytes), preserving_proto_field_name=True
        ),
        "signatures": [base64.b64encode(s).decode() for s in raw.signatures],
    }


def normalise(value: Any, side: Side, key: str = "") -> Any:
    if key == "tx" and isinstance(value, str):
        return normalise(decode_tx(value), side, "decoded tx")
    if isinstance(value, dict):
        return {k: normalise(v, side, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, side, key) for v in value]
    if not isinstance(value, str):
        return value
    if key in _VOLATILE:
        return f"<{key}>"
    if value in side.labels:
        return side.labels[value]
    for address, label in side.labels.items():  # `tx.acc_seq` is "<account>/<sequence>"
        value = value.replace(address, label)
    if key not in _EXACT and _B64.match(value) and len(value) % 4 == 0:  # not "tendermint/event/Tx"
        return f"<base64:{len(base64.b64decode(value))}>"
    return _PROTO_TIME.sub("update_time:<seconds:<s> nanos:<ns> >", value)


def assert_same(what: str, real: Any, emu: Any) -> None:
    found = differences(real, emu)
    assert not found, f"{what}:\n" + "\n".join(found)


# ---- the comparisons -------------------------------------------------------------------------------------


async def test_every_reply_is_byte_for_byte_the_same(worlds: Worlds) -> None:
    assert worlds.real.replies.keys() == worlds.emu.replies.keys()
    found = []
    for name, real_text in worlds.real.replies.items():
        emu_text = worlds.emu.replies[name]
        if real_text != emu_text:
            fields = differences(json.loads(real_text), json.loads(emu_text))
            found.append(f"{name}:\n    real {real_text}\n    emu  {emu_text}\n    " + "\n    ".join(fields))
    assert not found, "replies differ:\n" + "\n".join(found)


async def test_the_subscribe_replies_are_what_the_watcher_waits_for(worlds: Worlds) -> None:
    replies = worlds.real.replies
    for sub_id in QUERIES:  # workers/watcher.py Watcher._await_acks: this id, `result == {}`
        ack = json.loads(replies[f"subscribe {sub_id}"])
        assert ack == {"jsonrpc": "2.0", "id": sub_id, "result": {}}
    # A second subscribe with the same query (by canonical text, whatever the spelling) is refused.
    for name in ("same query again", "same query, respaced", "same query, array params"):
        error = json.loads(replies[name])["error"]
        assert error == {"code": -32603, "message": "Internal error", "data": "already subscribed"}, name
    assert "max_subscriptions_per_client 5 reached" in replies["limit: subscription 6"]


async def test_bad_queries_are_refused_with_the_parser_error(worlds: Worlds) -> None:
    for name in BAD_QUERIES:
        error = json.loads(worlds.real.replies[f"bad query: {name}"])["error"]
        assert error["code"] == -32603 and error["message"] == "Internal error", name
    assert (
        json.loads(worlds.real.replies["bad query: truncated"])["error"]["data"]
        == "failed to parse query: offset 17: EOF"
    )


async def test_the_edit_event_frame(worlds: Worlds) -> None:
    real, emu = (normalise(json.loads(side.event), side) for side in (worlds.real, worlds.emu))
    assert real["result"]["query"] == EDIT_QUERY  # the comparison compares the frame we asked for
    assert_same("Tx event frame", real, emu)


async def test_the_product_reads_both_frames_the_same_way(worlds: Worlds) -> None:
    for side in (worlds.real, worlds.emu):
        seen = parse_event(json.loads(side.event))
        assert seen is not None, side.name
        assert (seen.sender, seen.code) == (side.accounts["bob"], 0), side.name


async def test_reference_claims_the_real_frame_settles(worlds: Worlds) -> None:
    """chain-wire-formats.md §0/§1/§7 marks these [D] or [U]; the real 0.38 node settles them."""
    frame = json.loads(worlds.real.event)
    assert frame["id"] == 1  # every event reuses the subscribe request's id
    assert set(frame["result"]) == {"query", "data", "events"}
    tx_result = frame["result"]["data"]["value"]["TxResult"]
    # [D] omitempty inside websocket events: index 0 absent; on success no code/log/info/codespace.
    assert set(tx_result) == {"height", "tx", "result"}
    assert set(tx_result["result"]) == {"data", "gas_wanted", "gas_used", "events"}
    # Event attributes stay jsonpb inside the omitempty result: `index` printed.
    assert all("index" in a for e in tx_result["result"]["events"] for a in e["attributes"])
    # [U] ante events with zero fees: tx{fee:"",fee_payer}, tx{acc_seq}, tx{signature}; no coin moves.
    types = [e["type"] for e in tx_result["result"]["events"]]
    assert types == ["tx", "tx", "tx", "message", "edit_validator"]
    events = frame["result"]["events"]
    assert events["tx.fee"] == [""] and events["message.sender"] == [worlds.real.accounts["bob"]]
    assert events["tm.event"] == ["Tx"] and re.fullmatch(r"[0-9A-F]{64}", events["tx.hash"][0])
    # A genesis validator's first tx after its gentx carries sequence 1.
    assert events["tx.acc_seq"] == [f"{worlds.real.accounts['bob']}/1"]
    # [U] commission_rate is Commission.String(): gogoproto text format, with a trailing space.
    assert re.fullmatch(
        r'commission_rates:<rate:"\d+" max_rate:"\d+" max_change_rate:"\d+" > '
        r"update_time:<seconds:\d+ nanos:\d+ > ",
        events["edit_validator.commission_rate"][0],
    )


async def test_the_wire_text_escapes_html_characters(worlds: Worlds) -> None:
    # Go's encoding/json writes `<`, `>` and `&` as \u003c…: a client reading bytes (not JSON) would see it.
    for side in (worlds.real, worlds.emu):
        assert "\\u003c" in side.event and "<" not in side.event, side.name


async def test_normalise_can_fail(worlds: Worlds) -> None:
    # The comparison is not vacuous: a changed sender or a dropped field is a difference.
    frame = normalise(json.loads(worlds.real.event), worlds.real)
    changed = copy.deepcopy(frame)
    changed["result"]["events"]["message.sender"] = ["<alice.account>"]
    del changed["result"]["data"]["value"]["TxResult"]["result"]["data"]
    assert len(differences(frame, changed)) == 2
