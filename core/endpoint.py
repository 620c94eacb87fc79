"""The strict endpoint grammar (DESIGN.md invariant 6) and the `p2p=` extraction from `details`. Pure.

`details` is attacker-controlled (any UTF-8, up to 280 bytes). The grammar is a whitelist: a host is a
dotted-quad IPv4 address, a bracketed IPv6 address or an RFC 1123 DNS name, built back into a canonical
string by us, so nothing that passes can carry `,` `"` `'` `$` `;` `@` `/` `#` whitespace or non-ASCII
into TOML, a shell script or a URL. Reasons quote the offending text with `ascii()` so that they are
safe to print in a log line or a UI cell.

Decisions where the spec was silent:
- `p2p=` is case-sensitive (as upstream); `P2P=` is not recognised.
- A JSON fragment `"p2p":"..."` is read literally up to the next `"`; JSON escapes are not decoded, so a
  value containing a backslash is invalid rather than decoded into something not visible in `details`.
- Every candidate must be valid: one bad `p2p=` next to a good one makes the whole details invalid.
- A port is 1-5 ASCII digits without a leading zero; `1.2.3.4` and `1.2.3.4:26656` are different
  endpoints (so publishing both is ambiguous).
- IPv6 hosts are stored unbracketed in RFC 5952 form; DNS names are lower-cased; a trailing dot is refused.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from core.policy import EndpointPolicy, IPAddress, format_ip, refusal

HostKind = Literal["ipv4", "ipv6", "dns"]
EndpointStatusName = Literal["valid", "invalid", "missing"]

MAX_DNS_NAME = 253
MAX_LABEL = 63
MAX_ENDPOINT_LENGTH = MAX_DNS_NAME + len(":65535")
PORT_RANGE = "1\N{EN DASH}65535"

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_DIGITS = frozenset("0123456789")

# Names that resolve to the local host or a private network by convention; allow_cidrs cannot exempt
# them because they are not addresses. Resolved addresses are judged again by the probe.
_REFUSED_NAME_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("localhost", "a loopback name"),
    ("local", "a local-network name (.local: multicast DNS, or Kubernetes' cluster.local)"),
    ("internal", "a private-use name (.internal), e.g. the cloud metadata host"),
    ("localdomain", "a local name (.localdomain)"),
    ("home.arpa", "a private home-network name (.home.arpa)"),
    ("svc", "a Kubernetes service name (.svc)"),
)


class EndpointError(ValueError):
    """Text that is not an acceptable endpoint; `reason` says why in one human sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def show(text: str, limit: int = 64) -> str:
    """Quote attacker text for a message: ASCII-only, one line, bounded."""
    if len(text) > limit:
        return ascii(text[:limit]) + "..."
    return ascii(text)


def _describe_char(char: str) -> str:
    if char.isascii() and char.isprintable():
        return show(char)
    return f"{show(char)} ({unicodedata.name(char, 'a control character')})"


def _parse_ipv4(host: str) -> str:
    octets = host.split(".")
    if len(octets) != 4:
        raise EndpointError(f"{show(host)} is not a valid IPv4 address (it needs four dot-separated numbers)")
    for octet in octets:
        if not octet:
            raise EndpointError(f"{show(host)} is not a valid IPv4 address (empty octet)")
        if len(octet) > 1 and octet[0] == "0":
            raise EndpointError(
                f"{show(host)} is not a valid IPv4 address (octet {show(octet)} has a leading zero)"
            )
        if len(octet) > 3 or int(octet) > 255:
            raise EndpointError(f"{show(host)} is not a valid IPv4 address (octet {octet[:12]} is above 255)")
    return str(ipaddress.IPv4Address(host))


def _parse_ipv6(inner: str) -> str:
    if "%" in inner:
        raise EndpointError(f"IPv6 zone ids are not allowed ({show(inner)})")
    for char in inner:
        if char not in _IPV6_CHARS:
            raise EndpointError(
                f"IPv6 address {show(inner)} contains {_describe_char(char)} which is not allowed"
            )
    try:
        return format_ip(ipaddress.IPv6Address(inner))
    except ValueError:
        raise EndpointError(f"{show(inner)} is not a valid IPv6 address") from None


def _parse_dns_name(host: str) -> str:
    if len(host) > MAX_DNS_NAME:
        raise EndpointError(f"host name is {len(host)} characters long, more than {MAX_DNS_NAME}")
    if host.endswith("."):
        raise EndpointError(f"host {show(host)} ends with a dot")
    labels = host.lower().split(".")
    for label in labels:
        if not label:
            raise EndpointError(f"host {show(host)} has an empty label")
        if len(label) > MAX_LABEL:
            raise EndpointError(f"host {show(host)} has a label longer than {MAX_LABEL} characters")
        if label[0] == "-" or label[-1] == "-":
            raise EndpointError(f"host {show(host)} has a label that starts or ends with '-'")
    if labels[-1].isdigit():
        raise EndpointError(
            f"host {show(host)} ends in an all-numeric label, which is neither a dotted-quad IPv4 "
            "address nor a valid host name"
        )
    return ".".join(labels)


def parse_host(text: str, bracketed: bool = False) -> tuple[str, HostKind]:
    """The canonical form and kind of a host; `bracketed` means it was written inside `[...]`."""
    if bracketed:
        return _parse_ipv6(text), "ipv6"
    if not text:
        raise EndpointError("host is empty")
    for char in text:
        if char not in _HOST_CHARS:
            raise EndpointError(
                f"host {show(text)} contains {_describe_char(char)} which is not allowed in a host name"
            )
    if all(char in _DIGITS or char == "." for char in text):
        return _parse_ipv4(text), "ipv4"
    return _parse_dns_name(text), "dns"


def parse_port(text: str) -> int:
    if not text:
        raise EndpointError("port is empty")
    if not all(char in _DIGITS for char in text):
        raise EndpointError(f"port {show(text)} is not a decimal number")
    if len(text) > 1 and text[0] == "0":
        raise EndpointError(f"port {show(text)} has a leading zero")
    if len(text) > 5 or not 1 <= int(text) <= 65535:
        raise EndpointError(f"port {text[:12]} is outside {PORT_RANGE}")
    return int(text)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def split_host_port(text: str) -> tuple[str, bool, str | None]:
    """(host text, bracketed, port text or None) without judging either part."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise EndpointError(f"IPv6 address {show(text)} is missing its closing ']'")
        rest = text[close + 1 :]
        if not rest:
            return text[1:close], True, None
        if rest[0] != ":":
            raise EndpointError(f"unexpected {show(rest)} after the IPv6 address")
        return text[1:close], True, rest[1:]
    colons = text.count(":")
    if colons == 0:
        return text, False, None
    if colons == 1:
        host, port = text.split(":")
        return host, False, port
    if _is_ipv6(text) or _is_ipv6(text.rsplit(":", 1)[0]):
        raise EndpointError(
            f"IPv6 address {show(text)} must be written in brackets, e.g. [2001:db8::1]:26656"
        )
    raise EndpointError(f"host {show(text)} contains ':' which is not allowed in a host name")


class Endpoint(BaseModel):
    """A grammar-checked endpoint in canonical form. Construction re-checks it, so a payload that
    arrives through Temporal cannot smuggle a non-canonical host past the grammar."""

    model_config = ConfigDict(frozen=True)

    host: StrictStr
    port: int | None = Field(default=None, ge=1, le=65535, strict=True)
    kind: HostKind

    @model_validator(mode="after")
    def _canonical(self) -> Endpoint:
        host, kind = parse_host(self.host, bracketed=self.kind == "ipv6")
        if (host, kind) != (self.host, self.kind):
            raise ValueError(f"endpoint host {show(self.host)} is not the canonical {kind} form {host!r}")
        return self

    @property
    def host_literal(self) -> str:
        """The host as it appears in `host:port`: IPv6 in brackets."""
        return f"[{self.host}]" if self.kind == "ipv6" else self.host

    def render(self) -> str:
        return self.host_literal if self.port is None else f"{self.host_literal}:{self.port}"

    def __str__(self) -> str:
        return self.render()


def parse_endpoint_syntax(text: str) -> Endpoint:
    """Grammar only (no address policy): `<host>[:<port>]` into its canonical Endpoint."""
    if not text:
        raise EndpointError("endpoint is empty")
    if len(text) > MAX_ENDPOINT_LENGTH:
        raise EndpointError(f"endpoint is {len(text)} characters long, more than {MAX_ENDPOINT_LENGTH}")
    host_text, bracketed, port_text = split_host_port(text)
    host, kind = parse_host(host_text, bracketed)
    port = None if port_text is None else parse_port(port_text)
    return Endpoint(host=host, port=port, kind=kind)


def _name_refusal(name: str) -> str | None:
    for suffix, description in _REFUSED_NAME_SUFFIXES:
        if name == suffix or name.endswith("." + suffix):
            return f"{name} is {description}"
    if "." not in name:
        return (
            f"{name} is a single-label name, which resolvers complete with local search domains "
            "(e.g. Kubernetes services); use a fully qualified name"
        )
    return None


def check_endpoint(endpoint: Endpoint, policy: EndpointPolicy) -> Endpoint:
    """`endpoint` if the public-address policy accepts it, else EndpointError with the reason."""
    if endpoint.kind == "dns":
        reason = _name_refusal(endpoint.host)
    else:
        reason = refusal(ipaddress.ip_address(endpoint.host), policy)
    if reason is not None:
        raise EndpointError(reason)
    return endpoint


def parse_endpoint(text: str, policy: EndpointPolicy) -> Endpoint:
    """Grammar and policy: the only way untrusted text becomes an Endpoint that may be dialled."""
    return check_endpoint(parse_endpoint_syntax(text), policy)


def check_resolved_address(
    address: str | IPAddress, policy: EndpointPolicy, host: str | None = None
) -> IPAddress:
    """For the probe: every address a DNS name resolves to must pass the same policy as a literal.

    `address` may carry an IPv6 zone (`fe80::1%eth0`, as getaddrinfo returns); it is judged without it.
    """
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        raise EndpointError(f"{show(str(address))} is not an IP address") from None
    reason = refusal(ip, policy)
    if reason is not None:
        raise EndpointError(reason if host is None else f"{reason} (resolved from {host})")
    return ip


class EndpointStatus(BaseModel):
    """What a validator's `details` say about its endpoint (the registry view's status and reason)."""

    model_config = ConfigDict(frozen=True)

    status: EndpointStatusName
    raw: str | None = Field(default=None, description="the candidate text as published (untrusted)")
    endpoint: Endpoint | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EndpointStatus:
        if (self.status == "valid") != (self.endpoint is not None):
            raise ValueError("a valid status has an endpoint and only a valid one does")
        if (self.status == "valid") == (self.reason is not None):
            raise ValueError("every status but valid has a reason")
        return self


_TOKEN = re.compile(r"[^ \t\n\r\v\f]+")
_JSON_P2P = re.compile(r'"p2p"[ \t\n\r]*:[ \t\n\r]*"([^"]*)"')
_TOKEN_PREFIX = "p2p="


def endpoint_candidates(details: str) -> list[str]:
    """Every published endpoint text, in order: `p2p=` tokens and JSON `"p2p":"..."` values."""
    found: list[tuple[int, str]] = []
    for token in _TOKEN.finditer(details):
        if token.group().startswith(_TOKEN_PREFIX):
            found.append((token.start(), token.group()[len(_TOKEN_PREFIX) :]))
    found.extend((match.start(1), match.group(1)) for match in _JSON_P2P.finditer(details))
    return [text for _, text in sorted(found)]


def extract_endpoint(details: str | None, policy: EndpointPolicy) -> EndpointStatus:
    """valid (one endpoint, possibly repeated), invalid (any bad candidate, or two different), missing."""
    candidates = endpoint_candidates(details or "")
    if not candidates:
        return EndpointStatus(status="missing", reason="details contain no p2p=<host>[:<port>]")
    parsed: list[tuple[str, Endpoint]] = []
    for text in candidates:
        try:
            parsed.append((text, parse_endpoint(text, policy)))
        except EndpointError as exc:
            return EndpointStatus(status="invalid", raw=text, reason=exc.reason)
    first_text, first = parsed[0]
    for _, other in parsed[1:]:
        if other != first:
            return EndpointStatus(
                status="invalid", raw=first_text, reason=f"ambiguous: details name both {first} and {other}"
            )
    return EndpointStatus(status="valid", raw=first_text, endpoint=first)
