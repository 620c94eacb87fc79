"""The devnet admin API on the RPC port (`/devnet/…`): drive the chain the way operators and governance
would (signed txs in committed blocks), move emulated nodes, and inject faults.

Every tx-producing call answers once its block has committed AND the emulated nodes have been moved, so a
caller can probe the new endpoint right away. Bad input is a 400 with a one-line reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from devnet.chain import handlers
from devnet.chain.encoding import dumps
from devnet.chain.endpoints import place_nodes
from devnet.chain.models import (
    BlocksBody,
    BlockTimeBody,
    ConsumerPhaseBody,
    CreateConsumerBody,
    CreateValidatorBody,
    EditValidatorBody,
    FaultsBody,
    NodeBody,
    OptBody,
    ValidatorStatusBody,
)
from devnet.chain.state import PHASES, ChainError
from devnet.chain.txs import ExecResult

if TYPE_CHECKING:
    from devnet.chain.server import ChainEmulator

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _reply(payload: Any, status: int = 200) -> web.Response:
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json()
    else:
        text = dumps(payload)
    return web.Response(text=text, status=status, content_type="application/json")


def phase_name(value: str) -> str:
    """A phase by full name, number, or short name ('launched')."""
    text = value.strip()
    if text.isdigit() and int(text) < len(PHASES):
        return PHASES[int(text)]
    upper = text.upper()
    for candidate in (upper, f"CONSUMER_PHASE_{upper}"):
        if candidate in PHASES[1:]:
            return candidate
    raise AdminError(f"unknown consumer phase {value!r}; one of {', '.join(PHASES[1:])}")


@web.middleware
async def admin_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith("/devnet/"):
        return await handler(request)
    try:
        return await handler(request)
    except AdminError as err:
        return _reply({"error": str(err)}, err.status)
    except ChainError as err:
        return _reply({"error": str(err)}, 400)
    except web.HTTPException as err:
        return _reply({"error": err.reason}, err.status)
    except Exception as err:  # the admin API must answer, not hang or leak a traceback
        log.exception("admin request failed")
        return _reply({"error": f"internal error: {err}"}, 500)


class Admin:
    def __init__(self, emulator: ChainEmulator) -> None:
        self.emulator = emulator
        self.chain = emulator.chain

    def install(self, app: web.Application) -> None:
        posts = {
            "edit_validator": self.edit_validator,
            "create_validator": self.create_validator,
            "create_consumer": self.create_consumer,
            "consumer_phase": self.consumer_phase,
            "opt_in": self.opt_in,
            "opt_out": self.opt_out,
            "node": self.node,
            "validator_status": self.validator_status,
            "block_time": self.block_time,
            "blocks": self.blocks,
            "faults": self.faults,
        }
        for name, handler in posts.items():
            app.router.add_post(f"/devnet/{name}", handler)
        app.router.add_get("/devnet/state", self.state)
        app.router.add_route("*", "/devnet/{tail:.*}", self.unknown)

    @staticmethod
    async def _body(request: web.Request, model: type[M]) -> M:
        raw = await request.read()
        try:
            data = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise AdminError(f"body is not JSON: {err}") from None
        try:
            return model.model_validate(data)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in err.errors()
            )
            raise AdminError(f"invalid {model.__name__}: {problems}") from None

    async def unknown(self, request: web.Request) -> web.Response:
        raise AdminError(f"no admin endpoint {request.method} {request.path}", 404)

    # ---- txs ---------------------------------------------------------------------------------------------

    async def edit_validator(self, request: web.Request) -> web.Response:
        body = await self._body(request, EditValidatorBody)
        validator = self.chain.validator(body.validator)
        failure = handlers.Failure(body.fail_keeps_message_events) if body.fail else None
        pending = handlers.edit_validator(
            self.chain,
            validator,
            moniker=body.moniker,
            identity=body.identity,
            website=body.website,
            security_contact=body.security_contact,
            details=body.details,
            fail=failure,
        )
        allow = self.emulator.scenario.allow_cidrs

        def move_nodes(result: ExecResult) -> None:
            if result.code != 0:
                return
            if body.details is not None:
                place_nodes(validator, body.details, allow, body.reachable)
            elif body.reachable is not None:
                validator.reachable = body.reachable

        return await self._submit(pending, move_nodes)

    async def create_validator(self, request: web.Request) -> web.Response:
        body = await self._body(request, CreateValidatorBody)
        details = (
            body.details if body.details is not None else (f"p2p={body.endpoint}" if body.endpoint else "")
        )
        handlers.check_description(moniker=body.moniker, details=details)
        pubkey = None
        if body.consensus_pubkey is not None:
            try:
                pubkey = base64.b64decode(body.consensus_pubkey, validate=True)
            except (binascii.Error, ValueError):
                raise AdminError("consensus_pubkey is not base64") from None
            if len(pubkey) != 32:
                raise AdminError(f"consensus_pubkey must be 32 bytes, got {len(pubkey)}")
        validator = self.chain.new_validator(
            body.moniker, details, body.tokens, "BOND_STATUS_UNBONDED", self.chain.latest.time_ns, pubkey
        )
        failure = handlers.Failure() if body.fail else None
        pending = handlers.create_validator(self.chain, validator, fail=failure, status=body.status)
        allow = self.emulator.scenario.allow_cidrs

        def place(result: ExecResult) -> None:
            if result.code == 0:
                place_nodes(validator, details, allow, body.reachable)

        submitted = await self.emulator.submit(pending, place)
        payload = {**submitted.model_dump(), "operator_address": validator.operator}
        return _reply(payload, 202 if submitted.pending else 200)

    async def create_consumer(self, request: web.Request) -> web.Response:
        body = await self._body(request, CreateConsumerBody)
        target = phase_name(body.phase)
        submitter = (
            self.chain.validator(body.submitter) if body.submitter else self.chain.ordered_validators()[0]
        )
        consumer_id = body.consumer_id or self.chain.next_consumer_id()
        pending = handlers.create_consumer(
            self.chain,
            submitter,
            consumer_id=consumer_id,
            chain_id=body.chain_id,
            name=body.name or body.chain_id,
            description=body.description,
            metadata=body.metadata,
        )
        if target != "CONSUMER_PHASE_REGISTERED" and self.emulator.paused:
            raise AdminError(
                "block production is paused; create the consumer, then set its phase after resuming"
            )
        submitted = await self.emulator.submit(pending)
        result: dict[str, Any] = {**submitted.model_dump(), "consumer_id": consumer_id}
        if target != "CONSUMER_PHASE_REGISTERED" and submitted.code == 0:
            result["phase_height"] = await self.emulator.set_phase(self.chain.consumers[consumer_id], target)
        return _reply(result, 202 if submitted.pending else 200)

    async def consumer_phase(self, request: web.Request) -> web.Response:
        body = await self._body(request, ConsumerPhaseBody)
        consumer = self.chain.consumer(body.consumer)
        if self.emulator.paused:
            raise AdminError("block production is paused; resume it before changing a phase", 409)
        height = await self.emulator.set_phase(consumer, phase_name(body.phase))
        return _reply({"height": height, "consumer_id": consumer.consumer_id, "phase": consumer.phase})

    async def opt_in(self, request: web.Request) -> web.Response:
        body = await self._body(request, OptBody)
        validator, consumer = self.chain.validator(body.validator), self.chain.consumer(body.consumer)
        failure = handlers.Failure() if body.fail else None
        return await self._submit(handlers.opt_in(self.chain, validator, consumer, fail=failure))

    async def opt_out(self, request: web.Request) -> web.Response:
        body = await self._body(request, OptBody)
        validator, consumer = self.chain.validator(body.validator), self.chain.consumer(body.consumer)
        failure = handlers.Failure() if body.fail else None
        return await self._submit(handlers.opt_out(self.chain, validator, consumer, fail=failure))

    async def _submit(
        self, pending: Any, after_commit: Callable[[ExecResult], None] | None = None
    ) -> web.Response:
        submitted = await self.emulator.submit(pending, after_commit)
        return _reply(submitted, 202 if submitted.pending else 200)

    # ---- devnet controls ---------------------------------------------------------------------------------

    async def node(self, request: web.Request) -> web.Response:
        body = await self._body(request, NodeBody)
        validator = self.chain.validator(body.validator)
        if body.reachable is not None:
            validator.reachable = body.reachable
            await self.emulator.nodes.reconcile()
        consumers = (
            [self.chain.consumer(body.consumer)]
            if body.consumer
            else self.chain.active_consumers_of(validator)
        )
        changed = []
        for consumer in consumers:
            node = self.emulator.nodes.find(validator.operator, consumer.consumer_id)
            if node is None:
                if body.consumer:
                    raise AdminError(f"{validator.moniker} runs no node for consumer {consumer.chain_id}")
                continue
            if body.catching_up is not None:
                node.catching_up = body.catching_up
            if body.unsafe_rpc is not None:
                node.unsafe_rpc = body.unsafe_rpc
            changed.append(consumer.chain_id)
        return _reply({"validator": validator.operator, "reachable": validator.reachable, "nodes": changed})

    async def validator_status(self, request: web.Request) -> web.Response:
        """Bonding, jailing and power change in EndBlock, not by tx: one block commits the change."""
        body = await self._body(request, ValidatorStatusBody)
        validator = self.chain.validator(body.validator)
        if self.emulator.paused:
            raise AdminError("block production is paused", 409)
        if body.status is not None:
            validator.status = body.status
        if body.jailed is not None:
            validator.jailed = body.jailed
        if body.tokens is not None:
            validator.tokens = body.tokens
        validator.touch()
        height = await self.emulator.commit_now()
        return _reply({"height": height, "status": validator.status, "jailed": validator.jailed})

    async def block_time(self, request: web.Request) -> web.Response:
        body = await self._body(request, BlockTimeBody)
        self.emulator.set_block_time(body.seconds)
        return _reply({"block_time": body.seconds})

    async def blocks(self, request: web.Request) -> web.Response:
        body = await self._body(request, BlocksBody)
        if self.emulator.paused:
            raise AdminError("block production is paused", 409)
        height = 0
        for _ in range(body.count):
            height = await self.emulator.commit_now()
        return _reply({"height": height})

    async def faults(self, request: web.Request) -> web.Response:
        body = await self._body(request, FaultsBody)
        faults = self.emulator.faults
        if body.clear:
            faults.clear()
        surfaces = {"both": ("rpc", "rest"), "all": ("rpc", "rest", "nodes")}.get(body.target, (body.target,))
        for surface in surfaces:
            if body.fail_next is not None:
                faults.fail_next(surface, body.fail_next, body.fail_status)  # type: ignore[arg-type]
            if body.slow_next is not None:
                faults.slow_next(surface, body.slow_next, body.delay)  # type: ignore[arg-type]
        dropped = self.emulator.drop_websockets() if body.drop_websockets else 0
        if body.pause_blocks is True:
            self.emulator.pause()
        elif body.pause_blocks is False:
            await self.emulator.resume()
        return _reply(
            {"faults": faults.snapshot(), "dropped_websockets": dropped, "paused": self.emulator.paused}
        )

    async def state(self, request: web.Request) -> web.Response:
        return _reply(self.emulator.state())
