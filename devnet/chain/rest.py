"""The provider's REST API (SDK 0.50 grpc-gateway on :1317): staking validators, tx search and lookup,
and the ICS provider queries. Errors always come back as google.rpc.Status bodies, never a traceback."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from core.addresses import AddressError, decode
from devnet.chain import sdk_json
from devnet.chain.encoding import dumps
from devnet.chain.faults import Faults
from devnet.chain.gateway import (
    UNIMPLEMENTED,
    GatewayError,
    enum_param,
    filtered_paginate,
    internal,
    invalid_argument,
    json_ok,
    not_found,
    page_request,
    param,
    uint64_param,
)
from devnet.chain.jsonrpc import Call, RPCError
from devnet.chain.query import QueryError, parse_query
from devnet.chain.rpc import ProviderRPC, page_window, per_page, search_txs
from devnet.chain.sdk_json import chain_json, validator_json
from devnet.chain.state import ACTIVE_PHASES, PHASES, ChainState, Consumer

log = logging.getLogger(__name__)

STAKING = "/cosmos/staking/v1beta1"
TX = "/cosmos/tx/v1beta1"
PROVIDER = "/interchain_security/ccv/provider"
TENDERMINT = "/cosmos/base/tendermint/v1beta1"
FILTERABLE_STATUSES = ("BOND_STATUS_UNBONDED", "BOND_STATUS_UNBONDING", "BOND_STATUS_BONDED")
ORDER_BY = ("ORDER_BY_UNSPECIFIED", "ORDER_BY_ASC", "ORDER_BY_DESC")


@web.middleware
async def gateway_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as err:
        return err.response()
    except web.HTTPException:
        raise
    except Exception as err:  # a bug must still look like a gateway error to clients
        log.exception("REST handler failed")
        return internal(str(err) or type(err).__name__).response()


_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32_failure(text: str) -> str | None:
    """The reason Go's bech32.DecodeNoLimit (btcutil, used by the SDK) gives for a malformed string, in its
    words (measured on interchain-security-pd v7.0.1: `cosmosvaloper1bad` -> `invalid separator index 13`);
    None when the string passes these checks (checksum and prefix errors keep the emulator's wording)."""
    if len(text) < 8:
        return f"invalid bech32 string length {len(text)}"
    for ch in text:
        if not 33 <= ord(ch) <= 126:
            return f"invalid character in string: '{ch}'"
    if text.lower() != text and text.upper() != text:
        return "string not all lowercase or all uppercase"
    lowered = text.lower()
    one = lowered.rfind("1")
    if one < 1 or one + 7 > len(lowered):
        return f"invalid separator index {one}"
    for ch in lowered[one + 1 :]:
        if ch not in _BECH32_CHARSET:
            return f"invalid character not part of charset: {ord(ch)}"
    return None


class ProviderREST:
    def __init__(self, chain: ChainState, faults: Faults, rpc: ProviderRPC) -> None:
        self.chain = chain
        self.rpc = rpc  # the SDK's tendermint service reads the same node the RPC serves
        app = web.Application(middlewares=[faults.middleware("rest"), gateway_errors])
        routes = [
            (f"{STAKING}/validators", self.validators),
            (f"{STAKING}/validators/{{validator_addr}}", self.validator),
            (f"{TX}/txs", self.txs),
            (f"{TX}/txs/{{hash}}", self.tx),
            (f"{TENDERMINT}/syncing", self.syncing),
            (f"{TENDERMINT}/node_info", self.node_info),
            (f"{TENDERMINT}/blocks/latest", self.latest_block),
            (f"{TENDERMINT}/blocks/{{height}}", self.block_by_height),
            (f"{PROVIDER}/consumer_chains/{{phase}}", self.consumer_chains),
            (f"{PROVIDER}/consumer_chain/{{consumer_id}}", self.consumer_chain),
            (f"{PROVIDER}/opted_in_validators/{{consumer_id}}", self.opted_in_validators),
            (f"{PROVIDER}/consumer_validators/{{consumer_id}}", self.consumer_validators),
        ]
        for path, handler in routes:
            app.router.add_get(path, handler)
        app.router.add_route("*", "/{tail:.*}", self.not_implemented)
        self.app = app

    async def not_implemented(self, request: web.Request) -> web.Response:
        return GatewayError(UNIMPLEMENTED, "Not Implemented").response()

    async def syncing(self, request: web.Request) -> web.Response:
        return json_ok('{"syncing":false}')

    async def node_info(self, request: web.Request) -> web.Response:
        return json_ok(sdk_json.node_info_response(self.rpc.status(Call(args={}))))

    async def latest_block(self, request: web.Request) -> web.Response:
        return self._block(self.chain.height)

    async def block_by_height(self, request: web.Request) -> web.Response:
        raw = request.match_info["height"]
        if not re.fullmatch(r"-?[0-9]+", raw):
            raise invalid_argument(
                f'type mismatch, parameter: height, error: strconv.ParseInt: parsing "{raw}": invalid syntax'
            )
        height = int(raw)
        if height > self.chain.height:
            raise invalid_argument("requested block height is bigger then the chain length")
        if height < 1:
            raise internal(f"height must be greater than 0, but got {height}")
        return self._block(height)

    def _block(self, height: int) -> web.Response:
        rendered = self.rpc.block(Call(args={"height": height}))
        block = self.chain.block(height)
        assert block is not None
        proposer = next(
            (
                v.addr.valcons
                for v in self.chain.ordered_validators()
                if v.keys.consensus_address == block.proposer
            ),
            "",
        )
        return json_ok(sdk_json.block_response(rendered, proposer))

    # ---- staking -----------------------------------------------------------------------------------------

    async def validators(self, request: web.Request) -> web.Response:
        status = param(request.query, "status") or ""
        if status and status not in FILTERABLE_STATUSES:
            raise invalid_argument(f"invalid validator status {status}")
        page = filtered_paginate(
            self.chain.ordered_validators(),
            key_of=lambda v: v.store_key,
            matches=(lambda v: v.status == status) if status else (lambda v: True),
            request=page_request(request.query),
            start_at=self.chain.validator_index_after,
        )
        body = ",".join(validator_json(v) for v in page.items)
        return json_ok(f'{{"validators":[{body}],"pagination":{page.pagination_json()}}}')

    async def validator(self, request: web.Request) -> web.Response:
        address = request.match_info["validator_addr"]
        prefix = f"{self.chain.prefix}valoper"
        try:
            decode(address, prefix)
        except AddressError as err:
            raise GatewayError(2, f"decoding bech32 failed: {bech32_failure(address) or err}") from None
        found = self.chain.validators.get(address)
        if found is None:
            raise not_found(f"validator {address} not found")
        return json_ok(f'{{"validator":{validator_json(found)}}}')

    # ---- txs ---------------------------------------------------------------------------------------------

    async def txs(self, request: web.Request) -> web.Response:
        query_text = param(request.query, "query") or ""
        page_number = uint64_param(request.query, "page") or 1
        limit = uint64_param(request.query, "limit") or 100
        order = param(request.query, "order_by") or "ORDER_BY_UNSPECIFIED"
        order_by = ("", "asc", "desc")[enum_param(order, "order_by", ORDER_BY)]
        if not query_text:
            raise internal("query cannot be empty")
        try:
            query = parse_query(query_text)
        except QueryError as err:
            raise internal(str(err)) from None
        hits = search_txs(self.chain, query, order_by)
        size = per_page(limit)
        try:
            start = page_window(page_number, size, len(hits))
        except RPCError as err:  # the node's error travels up as the gateway's Internal message
            raise internal(err.data) from None
        window = hits[start : start + size]
        txs = ",".join(sdk_json.tx_json(r) for r in window)
        responses = ",".join(sdk_json.tx_response_json(r) for r in window)
        return json_ok(
            f'{{"txs":[{txs}],"tx_responses":[{responses}],"pagination":null,"total":"{len(hits)}"}}'
        )

    async def tx(self, request: web.Request) -> web.Response:
        tx_hash = request.match_info["hash"]
        if not re.fullmatch(r"[0-9a-fA-F]{64}", tx_hash):
            raise invalid_argument(f"invalid tx hash {tx_hash}: encoding/hex: invalid byte")
        record = self.chain.tx_by_hash.get(bytes.fromhex(tx_hash))
        if record is None:
            raise not_found(f"tx not found: {tx_hash}")
        return json_ok(
            f'{{"tx":{sdk_json.tx_json(record)},"tx_response":{sdk_json.tx_response_json(record)}}}'
        )

    # ---- ICS provider ------------------------------------------------------------------------------------

    def _consumer(self, consumer_id: str) -> Consumer | None:
        if not consumer_id.strip():
            raise invalid_argument("consumer id cannot be blank: invalid consumer id")
        if not re.fullmatch(r"[0-9]+", consumer_id) or int(consumer_id) >= 1 << 64:
            raise invalid_argument(
                f'consumer id ({consumer_id}) cannot be parsed: strconv.ParseUint: parsing "{consumer_id}": '
                "invalid syntax: invalid consumer id"
            )
        return self.chain.consumers.get(consumer_id)

    async def consumer_chains(self, request: web.Request) -> web.Response:
        phase = PHASES[enum_param(request.match_info["phase"], "phase", PHASES)]
        page = filtered_paginate(
            self.chain.ordered_consumers(),
            key_of=lambda c: c.store_key,
            matches=(lambda c: True) if phase == PHASES[0] else (lambda c: c.phase == phase),
            request=page_request(request.query),
        )
        body = ",".join(chain_json(c) for c in page.items)
        return json_ok(f'{{"chains":[{body}],"pagination":{page.pagination_json()}}}')

    async def consumer_chain(self, request: web.Request) -> web.Response:
        consumer_id = request.match_info["consumer_id"]
        consumer = self._consumer(consumer_id)
        if consumer is None:
            raise invalid_argument(f"cannot retrieve chain id for consumer id: {consumer_id}")
        return json_ok(sdk_json.consumer_chain_json(consumer))

    async def opted_in_validators(self, request: web.Request) -> web.Response:
        consumer_id = request.match_info["consumer_id"]
        consumer = self._consumer(consumer_id)
        if consumer is None or consumer.phase not in ACTIVE_PHASES:
            raise invalid_argument(f"unknown consumer chain: {consumer_id}")
        addresses = [v.addr.valcons for v in sdk_json.opted_in_validators(self.chain, consumer)]
        return json_ok(dumps({"validators_provider_addresses": addresses}))

    async def consumer_validators(self, request: web.Request) -> web.Response:
        consumer_id = request.match_info["consumer_id"]
        consumer = self._consumer(consumer_id)
        if consumer is None:
            raise invalid_argument(f"cannot find a phase for consumer: {consumer_id}")
        validators = (
            sdk_json.opted_in_validators(self.chain, consumer) if consumer.phase in ACTIVE_PHASES else []
        )
        return json_ok(dumps({"validators": [sdk_json.consumer_validator_json(v) for v in validators]}))
