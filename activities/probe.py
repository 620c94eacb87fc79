"""The reachability gate: can a consumer node be dialled at the new endpoint on each consumer's P2P port?

Where the node id expected at a port is known, the port must also pass the authenticated probe
(activities/p2p_identity.py): the node there proves its key, and a different id fails the port like an
unreachable one ("the node at HOST:PORT proved id A, expected B"). Elsewhere a TCP connect is the check.

A DNS name is resolved here and only here, and every address it resolves to must pass the same
public-address policy as a literal (DNS rebinding to 169.254.169.254 is refused, not dialled).
"""

from __future__ import annotations

import asyncio
import socket

from pydantic import BaseModel

from activities.p2p_identity import host_port, prove_node_id
from core.endpoint import Endpoint, EndpointError, check_resolved_address
from core.policy import EndpointPolicy
from core.secret_connection import HandshakeError


class PortProbe(BaseModel):
    port: int
    reachable: bool
    address: str | None = None
    error: str | None = None
    node_id: str | None = None  # the id the node proved, when an expected id asked for the handshake


class ProbeReport(BaseModel):
    endpoint: str
    results: list[PortProbe]

    @property
    def reachable(self) -> bool:
        return all(r.reachable for r in self.results)

    def summary(self) -> str:
        bad = [r for r in self.results if not r.reachable]
        if not bad:
            return "reachable"
        unreachable = [f"{r.port} ({r.error})" for r in bad if r.node_id is None]
        impostors = [str(r.error) for r in bad if r.node_id is not None]  # answered, as another node
        head = [f"{self.endpoint} unreachable on " + ", ".join(unreachable)] if unreachable else []
        return "; ".join(head + impostors)


async def resolve(endpoint: Endpoint, policy: EndpointPolicy) -> list[str]:
    """Addresses to dial; for a DNS name, every resolved address is checked against the policy."""
    if endpoint.kind != "dns":
        return [endpoint.host]
    infos = await asyncio.get_running_loop().getaddrinfo(endpoint.host, None, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        check_resolved_address(address, policy, host=endpoint.host)
    return addresses


async def _connect(address: str, port: int, timeout: float) -> None:
    _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def _prove(address: str, port: int, expected: str, timeout: float) -> PortProbe:
    """The authenticated probe; a connect that fails is an OSError for the caller, as for a TCP probe."""
    try:
        proven = await prove_node_id(address, port, timeout)
    except HandshakeError as exc:
        return PortProbe(port=port, reachable=False, address=address, error=exc.reason)
    if proven != expected:
        error = f"the node at {host_port(address, port)} proved id {proven}, expected {expected}"
        return PortProbe(port=port, reachable=False, address=address, error=error, node_id=proven)
    return PortProbe(port=port, reachable=True, address=address, node_id=proven)


async def probe(
    endpoint: Endpoint,
    ports: list[int],
    policy: EndpointPolicy,
    timeout: float = 3.0,
    expected_ids: dict[int, str] | None = None,
) -> ProbeReport:
    """Dial `endpoint` at each port; a port passes when any resolved address answers: a TCP connect, or the
    authenticated probe proving `expected_ids[port]` where that is given."""
    try:
        addresses = await resolve(endpoint, policy)
    except (OSError, EndpointError) as exc:
        reason = exc.reason if isinstance(exc, EndpointError) else f"cannot resolve: {exc}"
        return ProbeReport(
            endpoint=endpoint.render(),
            results=[PortProbe(port=p, reachable=False, error=reason) for p in ports],
        )
    results = []
    for port in sorted(set(ports)):
        expected = (expected_ids or {}).get(port)
        failed = PortProbe(port=port, reachable=False, error="no address")
        for address in addresses:
            try:
                if expected is None:
                    await _connect(address, port, timeout)
                    result = PortProbe(port=port, reachable=True, address=address)
                else:
                    result = await _prove(address, port, expected, timeout)
            except (OSError, TimeoutError) as exc:
                # The address only when it is not the endpoint itself (a DNS name may resolve to several).
                where = "" if address == endpoint.host else f"{address}: "
                failed = PortProbe(port=port, reachable=False, error=where + _why(exc, timeout))
                continue
            if result.reachable:
                break
            failed = result  # another address may still hold the right node
        else:
            result = failed
        results.append(result)
    return ProbeReport(endpoint=endpoint.render(), results=results)


def _why(exc: BaseException, timeout: float) -> str:
    """A failed connect in the words an operator reads in `status`: "connection refused", not the
    exception's repr with the address and port again."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
