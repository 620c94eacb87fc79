"""The provider's CometBFT 0.38 RPC methods (rpc/core): status, health, net_info, abci_info, block,
block_results, tx, tx_search, and the websocket-only subscribe/unsubscribe/unsubscribe_all."""

from __future__ import annotations

import hashlib
from typing import Any

from core.upstream import node_id_from_pubkey
from devnet.chain import cmt_json
from devnet.chain.encoding import RawJSON, b64, rfc3339_nano, upper_hex
from devnet.chain.jsonrpc import Call, Kind, Param, Registry, internal_error
from devnet.chain.keys import ed25519_public_key
from devnet.chain.pubsub import MAX_QUERY_LENGTH, SubscribeError
from devnet.chain.query import Query, QueryError, parse_query
from devnet.chain.state import Block, ChainState, TxRecord

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100


def _query(text: str | None) -> Query:
    text = text or ""
    if len(text.encode()) > MAX_QUERY_LENGTH:
        raise internal_error("maximum query length exceeded")
    try:
        return parse_query(text)
    except QueryError as err:
        raise internal_error(str(err)) from None


def per_page(value: int | None) -> int:
    if value is None or value < 1:
        return DEFAULT_PER_PAGE
    return min(value, MAX_PER_PAGE)


def page_window(page: int | None, size: int, total: int) -> int:
    """validatePage: the 0-based offset of `page`, or the upstream range error."""
    if page is None:
        return 0
    pages = max(((total - 1) // size) + 1, 1)
    if page <= 0 or page > pages:
        raise internal_error(f"page should be within [1, {pages}] range, given {page}")
    return (page - 1) * size


def search_txs(chain: ChainState, query: Query, order_by: str | None) -> list[TxRecord]:
    """The kv indexer's answer, ordered by (height, index) as asked."""
    if order_by not in (None, "", "asc", "desc"):
        raise internal_error("expected order_by to be either `asc` or `desc` or empty")
    wanted_hash = query.value_for("tx.hash")
    if wanted_hash is not None:
        candidates: list[TxRecord] = [r for r in chain.txs if r.hash_hex == wanted_hash.upper()]
    else:
        candidates = chain.txs
    hits = [r for r in candidates if query.matches(r.events_map, r.event_types)]
    if order_by == "desc":
        hits.reverse()
    return hits


class ProviderRPC:
    def __init__(self, chain: ChainState, rpc_address: str) -> None:
        self.chain = chain
        self.rpc_address = rpc_address
        scenario = chain.scenario
        self._node_pubkey = ed25519_public_key(scenario.key_seed("node", scenario.chain_id))
        # The RPC node is a full node (not a validator) with its own consensus key, as in a real deployment.
        self._node_cons_pubkey = ed25519_public_key(
            scenario.key_seed("consensus", f"{scenario.chain_id}-rpc-node")
        )
        self.registry = Registry()
        reg = self.registry
        reg.add("health", lambda call: {})
        reg.add("status", self.status)
        reg.add("net_info", self.net_info)
        reg.add("abci_info", self.abci_info)
        reg.add("block", self.block, Param("height", Kind.INT))
        reg.add("block_results", self.block_results, Param("height", Kind.INT))
        reg.add("tx", self.tx, Param("hash", Kind.BYTES), Param("prove", Kind.BOOL))
        reg.add(
            "tx_search",
            self.tx_search,
            Param("query", Kind.STR),
            Param("prove", Kind.BOOL),
            Param("page", Kind.INT),
            Param("per_page", Kind.INT),
            Param("order_by", Kind.STR),
        )
        reg.add("subscribe", self.subscribe, Param("query", Kind.STR), ws_only=True)
        reg.add("unsubscribe", self.unsubscribe, Param("query", Kind.STR), ws_only=True)
        reg.add("unsubscribe_all", self.unsubscribe_all, ws_only=True)

    @property
    def listen_address(self) -> str:
        """A real node reports its configured p2p laddr, i.e. the loopback address it is bound to (settled
        against interchain-security-pd v7.0.1: `tcp://127.0.0.1:<port>`), never a wildcard."""
        host = self.rpc_address.removeprefix("tcp://").rpartition(":")[0]
        return f"tcp://{host}:26656"

    @property
    def node_id(self) -> str:
        return node_id_from_pubkey(self._node_pubkey)

    def validator_set(self) -> list[bytes]:
        """Consensus addresses of the bonded set in CometBFT's order: power descending, then address."""
        bonded = [v for v in self.chain.ordered_validators() if v.status == "BOND_STATUS_BONDED"]
        bonded.sort(key=lambda v: (-v.power, v.keys.consensus_address))
        return [v.keys.consensus_address for v in bonded]

    def validators_hash(self) -> bytes:
        keys = b"".join(
            v.keys.consensus_pubkey
            for v in self.chain.ordered_validators()
            if v.status == "BOND_STATUS_BONDED"
        )
        return hashlib.sha256(keys).digest()

    # ---- info --------------------------------------------------------------------------------------------

    def status(self, call: Call) -> dict[str, Any]:
        chain = self.chain
        latest, first = chain.latest, chain.blocks[0]
        return {
            "node_info": {
                "protocol_version": {
                    "p2p": cmt_json.P2P_PROTOCOL,
                    "block": cmt_json.BLOCK_PROTOCOL,
                    "app": "0",
                },
                "id": self.node_id,
                "listen_addr": self.listen_address,
                "network": chain.chain_id,
                "version": cmt_json.COMETBFT_VERSION,
                "channels": "40202122233038606100",
                "moniker": f"{chain.chain_id}-rpc",
                "other": {"tx_index": "on", "rpc_address": self.rpc_address},
            },
            "sync_info": {
                "latest_block_hash": upper_hex(latest.hash),
                "latest_app_hash": upper_hex(latest.app_hash),
                "latest_block_height": str(latest.height),
                "latest_block_time": rfc3339_nano(latest.time_ns),
                "earliest_block_hash": upper_hex(first.hash),
                "earliest_app_hash": upper_hex(first.app_hash),
                "earliest_block_height": str(first.height),
                "earliest_block_time": rfc3339_nano(first.time_ns),
                "catching_up": False,
            },
            "validator_info": {
                "address": upper_hex(hashlib.sha256(self._node_cons_pubkey).digest()[:20]),
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": b64(self._node_cons_pubkey)},
                "voting_power": "0",
            },
        }

    def net_info(self, call: Call) -> dict[str, Any]:
        return {"listening": True, "listeners": ["Listener(@)"], "n_peers": "0", "peers": []}

    def abci_info(self, call: Call) -> dict[str, Any]:
        latest = self.chain.latest
        return {
            "response": {
                "data": "GaiaApp",
                "version": "v21.0.0",
                "last_block_height": str(latest.height),
                "last_block_app_hash": b64(latest.app_hash),
            }
        }

    # ---- blocks ------------------------------------------------------------------------------------------

    def _block_at(self, height: int | None) -> Block:
        latest = self.chain.height
        if height is None:
            return self.chain.latest
        if height <= 0:
            raise internal_error(f"height must be greater than 0, but got {height}")
        if height > latest:
            raise internal_error(
                f"height {height} must be less than or equal to the current blockchain height {latest}"
            )
        block = self.chain.block(height)
        assert block is not None
        return block

    def block(self, call: Call) -> dict[str, Any]:
        return cmt_json.block_json(
            self._block_at(call.args["height"]),
            self.chain.chain_id,
            self.validators_hash(),
            self.validator_set(),
        )

    def block_results(self, call: Call) -> dict[str, Any]:
        return cmt_json.block_results(self._block_at(call.args["height"]))

    # ---- txs ---------------------------------------------------------------------------------------------

    def tx(self, call: Call) -> RawJSON:
        tx_hash: bytes = call.args["hash"] or b""
        record = self.chain.tx_by_hash.get(tx_hash)
        if record is None:
            raise internal_error(f"tx ({upper_hex(tx_hash)}) not found")
        return RawJSON(cmt_json.tx_search_entry(record))

    def tx_search(self, call: Call) -> RawJSON:
        args = call.args
        query = _query(args["query"])
        hits = search_txs(self.chain, query, args["order_by"])
        size = per_page(args["per_page"])
        start = page_window(args["page"], size, len(hits))
        entries = ",".join(cmt_json.tx_search_entry(r) for r in hits[start : start + size])
        return RawJSON(f'{{"txs":[{entries}],"total_count":"{len(hits)}"}}')

    # ---- websocket-only ----------------------------------------------------------------------------------

    def subscribe(self, call: Call) -> dict[str, Any]:
        try:
            call.connection.subscribe(call.args["query"] or "", call.request_id)
        except SubscribeError as err:
            raise internal_error(str(err)) from None
        return {}

    def unsubscribe(self, call: Call) -> dict[str, Any]:
        try:
            call.connection.unsubscribe(call.args["query"] or "")
        except SubscribeError as err:
            raise internal_error(str(err)) from None
        return {}

    def unsubscribe_all(self, call: Call) -> dict[str, Any]:
        try:
            call.connection.unsubscribe_all()
        except SubscribeError as err:
            raise internal_error(str(err)) from None
        return {}
