"""The endpoint grammar, the public-address policy and the `p2p=` extraction (DESIGN.md invariant 6)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from peer_strategies import (
    HOSTILE_CHARS,
    PERMISSIVE,
    PROPERTY,
    WHITELIST,
    endpoints,
    hostile_text,
)
from pydantic import ValidationError

from core.endpoint import (
    Endpoint,
    EndpointError,
    EndpointStatus,
    check_resolved_address,
    endpoint_candidates,
    extract_endpoint,
    parse_endpoint,
    parse_endpoint_syntax,
)
from core.policy import STRICT, EndpointPolicy, PolicyConfigError

DEVNET = EndpointPolicy.from_setting("127.0.10.0/24")
RANGE = "1\N{EN DASH}65535"  # as in the reasons: an en dash between the bounds


# ---------------------------------------------------------------- grammar: accepted, in canonical form


@pytest.mark.parametrize(
    ("text", "host", "port", "kind"),
    [
        ("1.2.3.4", "1.2.3.4", None, "ipv4"),
        ("8.8.8.8:26656", "8.8.8.8", 26656, "ipv4"),
        ("0.0.0.0:1", "0.0.0.0", 1, "ipv4"),
        ("255.255.255.255:65535", "255.255.255.255", 65535, "ipv4"),
        ("[2606:4700:4700::1111]", "2606:4700:4700::1111", None, "ipv6"),
        ("[2606:4700:4700:0:0:0:0:1111]:28746", "2606:4700:4700::1111", 28746, "ipv6"),
        ("[2606:4700:4700::ABCD]:1", "2606:4700:4700::abcd", 1, "ipv6"),
        ("[::ffff:1.2.3.4]", "::ffff:1.2.3.4", None, "ipv6"),
        ("[::ffff:102:304]", "::ffff:1.2.3.4", None, "ipv6"),
        ("node-1.Example.COM:26656", "node-1.example.com", 26656, "dns"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", None, "dns"),
        ("1e100.net", "1e100.net", None, "dns"),
        ("a" * 63 + ".com", "a" * 63 + ".com", None, "dns"),
    ],
)
def test_grammar_accepts_and_canonicalises(text: str, host: str, port: int | None, kind: str) -> None:
    endpoint = parse_endpoint_syntax(text)
    assert (endpoint.host, endpoint.port, endpoint.kind) == (host, port, kind)


# ---------------------------------------------------------------- grammar: refused, with the exact reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "endpoint is empty"),
        ("a;b", "host 'a;b' contains ';' which is not allowed in a host name"),
        ("1.2.3.4;rm -rf /", "host '1.2.3.4;rm -rf /' contains ';' which is not allowed in a host name"),
        ("1.2.3.4 foo", "host '1.2.3.4 foo' contains ' ' which is not allowed in a host name"),
        ("a,b.com", "host 'a,b.com' contains ',' which is not allowed in a host name"),
        ('a"b.com', "host 'a\"b.com' contains '\"' which is not allowed in a host name"),
        (
            "a\nb.com",
            "host 'a\\nb.com' contains '\\n' (a control character) which is not allowed in a host name",
        ),
        ("a_b.com", "host 'a_b.com' contains '_' which is not allowed in a host name"),
        ("$(id).com", "host '$(id).com' contains '$' which is not allowed in a host name"),
        (
            "\uff11.2.3.4",
            "host '\\uff11.2.3.4' contains '\\uff11' (FULLWIDTH DIGIT ONE) which is not allowed in a host name",
        ),
        (
            "\u0430pple.com",
            "host '\\u0430pple.com' contains '\\u0430' (CYRILLIC SMALL LETTER A) which is not allowed in a host name",
        ),
        ("127.1", "'127.1' is not a valid IPv4 address (it needs four dot-separated numbers)"),
        ("2130706433", "'2130706433' is not a valid IPv4 address (it needs four dot-separated numbers)"),
        ("1.2.3.4.5", "'1.2.3.4.5' is not a valid IPv4 address (it needs four dot-separated numbers)"),
        ("010.0.0.1", "'010.0.0.1' is not a valid IPv4 address (octet '010' has a leading zero)"),
        ("1.2.3.256", "'1.2.3.256' is not a valid IPv4 address (octet 256 is above 255)"),
        ("1..3.4", "'1..3.4' is not a valid IPv4 address (empty octet)"),
        (
            "0x7f.0.0.1",
            "host '0x7f.0.0.1' ends in an all-numeric label, which is neither a dotted-quad IPv4 address "
            "nor a valid host name",
        ),
        ("a..b.com", "host 'a..b.com' has an empty label"),
        (".a.com", "host '.a.com' has an empty label"),
        ("a.com.", "host 'a.com.' ends with a dot"),
        ("-a.com", "host '-a.com' has a label that starts or ends with '-'"),
        ("a-.com", "host 'a-.com' has a label that starts or ends with '-'"),
        ("a" * 64 + ".com", f"host '{'a' * 64}'... has a label longer than 63 characters"),
        ("a." * 126 + "com", "host name is 255 characters long, more than 253"),
        ("a" * 300, "endpoint is 300 characters long, more than 259"),
        ("1.2.3.4:", "port is empty"),
        ("1.2.3.4:0", f"port 0 is outside {RANGE}"),
        ("1.2.3.4:65536", f"port 65536 is outside {RANGE}"),
        ("1.2.3.4:99999999", f"port 99999999 is outside {RANGE}"),
        ("1.2.3.4:+80", "port '+80' is not a decimal number"),
        ("1.2.3.4:-80", "port '-80' is not a decimal number"),
        ("1.2.3.4:080", "port '080' has a leading zero"),
        ("1.2.3.4:8\uff10", "port '8\\uff10' is not a decimal number"),
        ("1.2.3.4:80 ", "port '80 ' is not a decimal number"),
        ("1.2.3.4:0x50", "port '0x50' is not a decimal number"),
        ("2001:db8::1", "IPv6 address '2001:db8::1' must be written in brackets, e.g. [2001:db8::1]:26656"),
        ("a:b:c", "host 'a:b:c' contains ':' which is not allowed in a host name"),
        (
            "2001:db8::1:26656",
            "IPv6 address '2001:db8::1:26656' must be written in brackets, e.g. [2001:db8::1]:26656",
        ),
        ("[2001:db8::1", "IPv6 address '[2001:db8::1' is missing its closing ']'"),
        ("[2001:db8::1]80", "unexpected '80' after the IPv6 address"),
        ("[fe80::1%eth0]:80", "IPv6 zone ids are not allowed ('fe80::1%eth0')"),
        ("[1.2.3.4]", "'1.2.3.4' is not a valid IPv6 address"),
        ("[2001:db8::g]", "IPv6 address '2001:db8::g' contains 'g' which is not allowed"),
        ("[]", "'' is not a valid IPv6 address"),
        ("1.2.3.4]:80", "host '1.2.3.4]' contains ']' which is not allowed in a host name"),
    ],
)
def test_grammar_refuses_with_specific_reason(text: str, reason: str) -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint_syntax(text)
    assert caught.value.reason == reason


# ---------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.5", "10.0.0.5 is a private address"),
        ("172.16.0.1", "172.16.0.1 is a private address"),
        ("192.168.1.1:26656", "192.168.1.1 is a private address"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address (cloud metadata)"),
        ("169.254.1.1", "169.254.1.1 is a link-local address"),
        ("100.64.0.1", "100.64.0.1 is a shared (carrier-grade NAT) address"),
        ("100.100.100.200", "100.100.100.200 is a shared (carrier-grade NAT) address (cloud metadata)"),
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),
        ("0.1.2.3", '0.1.2.3 is a reserved address ("this network")'),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("255.255.255.255", "255.255.255.255 is the broadcast address"),
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
        ("192.0.0.8", "192.0.0.8 is a reserved address (IETF protocol assignments)"),
        ("192.0.2.1", "192.0.2.1 is a documentation address"),
        ("198.51.100.1", "198.51.100.1 is a documentation address"),
        ("203.0.113.7:28746", "203.0.113.7 is a documentation address"),
        ("198.18.0.1", "198.18.0.1 is a benchmarking address"),
        ("[::1]", "::1 is a loopback address"),
        ("[::]", ":: is the unspecified address"),
        ("[fe80::1]", "fe80::1 is a link-local address"),
        ("[fd00::1]", "fd00::1 is a private address"),
        ("[fd00:ec2::254]", "fd00:ec2::254 is a private address (cloud metadata)"),
        ("[ff02::1]", "ff02::1 is a multicast address"),
        ("[2001:db8::1]", "2001:db8::1 is a documentation address"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 stands for 127.0.0.1, which is a loopback address"),
        (
            "[::ffff:a9fe:a9fe]",
            "::ffff:169.254.169.254 stands for 169.254.169.254, which is a link-local address "
            "(cloud metadata)",
        ),
        ("[64:ff9b::10.0.0.1]", "64:ff9b::a00:1 stands for 10.0.0.1, which is a private address"),
        ("[2002:7f00:1::]", "2002:7f00:1:: stands for 127.0.0.1, which is a loopback address"),
        ("[::1.2.3.4]", "::102:304 is a reserved address (outside global unicast 2000::/3)"),
        ("localhost", "localhost is a loopback name"),
        ("evil.localhost:80", "evil.localhost is a loopback name"),
        (
            "node.local",
            "node.local is a local-network name (.local: multicast DNS, or Kubernetes' cluster.local)",
        ),
        (
            "kubernetes.default.svc.cluster.local",
            "kubernetes.default.svc.cluster.local is a local-network name "
            "(.local: multicast DNS, or Kubernetes' cluster.local)",
        ),
        (
            "metadata.google.internal",
            "metadata.google.internal is a private-use name (.internal), e.g. the cloud metadata host",
        ),
        ("kubernetes.default.svc", "kubernetes.default.svc is a Kubernetes service name (.svc)"),
        ("router.home.arpa", "router.home.arpa is a private home-network name (.home.arpa)"),
        (
            "kubernetes",
            "kubernetes is a single-label name, which resolvers complete with local search domains "
            "(e.g. Kubernetes services); use a fully qualified name",
        ),
    ],
)
def test_strict_policy_refuses_with_specific_reason(text: str, reason: str) -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(text, STRICT)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "text", ["8.8.8.8", "1.1.1.1:26656", "[2606:4700:4700::1111]:28746", "node.example.com"]
)
def test_strict_policy_accepts_public_endpoints(text: str) -> None:
    assert parse_endpoint(text, STRICT) == parse_endpoint_syntax(text)


def test_allow_cidrs_exempt_exactly_their_range() -> None:
    assert parse_endpoint("127.0.10.1", DEVNET).host == "127.0.10.1"
    assert parse_endpoint("[::ffff:127.0.10.4]:28746", DEVNET).port == 28746
    with pytest.raises(EndpointError, match=r"127\.0\.11\.1 is a loopback address"):
        parse_endpoint("127.0.11.1", DEVNET)
    with pytest.raises(EndpointError, match=r"127\.0\.0\.1 is a loopback address"):
        parse_endpoint("127.0.0.1", DEVNET)


def test_documentation_range_allowed_when_listed() -> None:
    policy = EndpointPolicy.from_setting("203.0.113.0/24")
    assert str(parse_endpoint("203.0.113.7:28746", policy)) == "203.0.113.7:28746"


def test_allow_cidrs_never_exempt_non_unicast_addresses() -> None:
    for text in ("0.0.0.0", "224.0.0.1", "255.255.255.255", "[::]", "[ff02::1]"):
        with pytest.raises(EndpointError):
            parse_endpoint(text, PERMISSIVE)


def test_allow_cidrs_do_not_exempt_names() -> None:
    with pytest.raises(EndpointError, match="loopback name"):
        parse_endpoint("localhost", PERMISSIVE)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("", ()),
        (" 127.0.10.0/24 , ,fd00::/8 ", ("127.0.10.0/24", "fd00::/8")),
        ("10.1.2.3", ("10.1.2.3/32",)),
    ],
)
def test_policy_from_setting(setting: str, expected: tuple[str, ...]) -> None:
    policy = EndpointPolicy.from_setting(setting)
    assert tuple(str(net) for net in policy.allow_cidrs) == expected


def test_policy_survives_a_json_round_trip() -> None:
    policy = EndpointPolicy.from_setting("127.0.10.0/24,fd00::/8")
    assert EndpointPolicy.model_validate_json(policy.model_dump_json()) == policy
    assert EndpointPolicy(allow_cidrs=["127.0.10.0/24"]).allows(ipaddress.ip_address("127.0.10.1"))


def test_policy_from_already_parsed_networks() -> None:
    policy = EndpointPolicy.from_setting([ipaddress.ip_network("127.0.10.0/24")])
    assert policy.allows(ipaddress.ip_address("127.0.10.9"))


@pytest.mark.parametrize("bad", ["127.0.10.1/24", "bogus", "10.0.0.0/33"])
def test_policy_bad_cidr_names_the_setting(bad: str) -> None:
    with pytest.raises(PolicyConfigError, match=rf"^PEERSYNC_ENDPOINT_ALLOW_CIDRS: '{bad}' is not a CIDR"):
        EndpointPolicy.from_setting(f"127.0.10.0/24,{bad}")


# ---------------------------------------------------------------- resolved addresses (the probe)


def test_resolved_address_passes_the_same_policy() -> None:
    assert str(check_resolved_address("8.8.8.8", STRICT)) == "8.8.8.8"
    with pytest.raises(EndpointError) as caught:
        check_resolved_address("10.0.0.5", STRICT, host="node.example.com")
    assert caught.value.reason == "10.0.0.5 is a private address (resolved from node.example.com)"
    with pytest.raises(EndpointError, match=r"^169.254.169.254 is a link-local address \(cloud metadata\)$"):
        check_resolved_address(ipaddress.ip_address("169.254.169.254"), STRICT)
    assert str(check_resolved_address("127.0.10.3", DEVNET)) == "127.0.10.3"


def test_resolved_address_with_zone_and_garbage() -> None:
    with pytest.raises(EndpointError, match="fe80::1 is a link-local address"):
        check_resolved_address("fe80::1%eth0", STRICT)
    with pytest.raises(EndpointError, match="is not an IP address"):
        check_resolved_address("not-an-ip", STRICT)


# ---------------------------------------------------------------- the Endpoint model itself


def test_endpoint_model_refuses_non_canonical_or_hostile_fields() -> None:
    for fields in (
        {"host": "a;b", "kind": "dns"},
        {"host": "Example.com", "kind": "dns"},
        {"host": "1.2.3.4", "kind": "dns"},
        {"host": "2001:DB8::1", "kind": "ipv6"},
        {"host": "[2001:db8::1]", "kind": "ipv6"},
        {"host": "1.2.3.4", "kind": "ipv4", "port": 0},
        {"host": "1.2.3.4", "kind": "ipv4", "port": "80"},
    ):
        with pytest.raises(ValidationError):
            Endpoint(**fields)


def test_endpoint_survives_a_json_round_trip() -> None:
    endpoint = parse_endpoint_syntax("[2606:4700::1]:26656")
    assert Endpoint.model_validate_json(endpoint.model_dump_json()) == endpoint
    assert str(endpoint) == "[2606:4700::1]:26656"


# ---------------------------------------------------------------- extraction from details


@pytest.mark.parametrize(
    ("details", "status", "raw", "rendered", "reason"),
    [
        ("p2p=8.8.8.8", "valid", "8.8.8.8", "8.8.8.8", None),
        (
            "Reliable validator.\np2p=8.8.8.8:26656\nContact: ops@x.io",
            "valid",
            "8.8.8.8:26656",
            "8.8.8.8:26656",
            None,
        ),
        ("hello p2p=node.example.com bye", "valid", "node.example.com", "node.example.com", None),
        ('{"p2p":"8.8.8.8:26656"}', "valid", "8.8.8.8:26656", "8.8.8.8:26656", None),
        ('{"name": "v", "p2p" :\t"[2606:4700::1]"}', "valid", "[2606:4700::1]", "[2606:4700::1]", None),
        ('p2p=8.8.8.8 {"p2p":"8.8.8.8"}', "valid", "8.8.8.8", "8.8.8.8", None),
        ("p2p=8.8.8.8\tp2p=8.8.8.8", "valid", "8.8.8.8", "8.8.8.8", None),
        ("", "missing", None, None, "details contain no p2p=<host>[:<port>]"),
        ("just a validator", "missing", None, None, "details contain no p2p=<host>[:<port>]"),
        ("P2P=8.8.8.8", "missing", None, None, "details contain no p2p=<host>[:<port>]"),
        ("xp2p=8.8.8.8", "missing", None, None, "details contain no p2p=<host>[:<port>]"),
        ('{"p2p": 8}', "missing", None, None, "details contain no p2p=<host>[:<port>]"),
        (
            "p2p=1.2.3.4;rm -rf /",
            "invalid",
            "1.2.3.4;rm",
            None,
            "host '1.2.3.4;rm' contains ';' which is not allowed in a host name",
        ),
        (
            "p2p=8.8.8.8,evil@1.1.1.1:1",
            "invalid",
            "8.8.8.8,evil@1.1.1.1:1",
            None,
            "host '8.8.8.8,evil@1.1.1.1' contains ',' which is not allowed in a host name",
        ),
        ("p2p=10.0.0.5:26656", "invalid", "10.0.0.5:26656", None, "10.0.0.5 is a private address"),
        ("p2p=8.8.8.8:65536", "invalid", "8.8.8.8:65536", None, f"port 65536 is outside {RANGE}"),
        ("p2p=", "invalid", "", None, "endpoint is empty"),
        (
            '{"p2p":"8.8.8.8\\"]&unconditional=true"}',
            "invalid",
            "8.8.8.8\\",
            None,
            "host '8.8.8.8\\\\' contains '\\\\' which is not allowed in a host name",
        ),
        (
            "p2p=8.8.8.8 p2p=1.1.1.1",
            "invalid",
            "8.8.8.8",
            None,
            "ambiguous: details name both 8.8.8.8 and 1.1.1.1",
        ),
        (
            'p2p=8.8.8.8 {"p2p":"8.8.8.8:26656"}',
            "invalid",
            "8.8.8.8",
            None,
            "ambiguous: details name both 8.8.8.8 and 8.8.8.8:26656",
        ),
        ("p2p=8.8.8.8 p2p=127.0.0.1", "invalid", "127.0.0.1", None, "127.0.0.1 is a loopback address"),
        (
            "p2p=8.8.8.8\u00a0x",
            "invalid",
            "8.8.8.8\u00a0x",
            None,
            "host '8.8.8.8\\xa0x' contains '\\xa0' (NO-BREAK SPACE) which is not allowed in a host name",
        ),
    ],
)
def test_extract_endpoint(
    details: str, status: str, raw: str | None, rendered: str | None, reason: str | None
) -> None:
    result = extract_endpoint(details, STRICT)
    assert result.status == status
    assert result.raw == raw
    assert (None if result.endpoint is None else str(result.endpoint)) == rendered
    assert result.reason == reason


def test_extract_none_details_is_missing() -> None:
    assert extract_endpoint(None, STRICT).status == "missing"


def test_candidates_are_in_document_order() -> None:
    assert endpoint_candidates('{"p2p":"a.com"} p2p=b.com "p2p":"c.com"') == ["a.com", "b.com", "c.com"]


def test_status_model_is_consistent() -> None:
    with pytest.raises(ValidationError):
        EndpointStatus(status="valid", reason="x")
    with pytest.raises(ValidationError):
        EndpointStatus(status="invalid")


# ---------------------------------------------------------------- properties


@PROPERTY
@given(endpoints())
def test_render_then_parse_is_identity(endpoint: Endpoint) -> None:
    assert parse_endpoint_syntax(endpoint.render()) == endpoint


@PROPERTY
@given(endpoints())
def test_rendered_endpoint_uses_only_whitelisted_characters(endpoint: Endpoint) -> None:
    assert WHITELIST.fullmatch(endpoint.render())
    assert "@" not in endpoint.render()


@PROPERTY
@given(st.text(alphabet=HOSTILE_CHARS + "gxyz", max_size=30) | st.text(max_size=30))
def test_anything_that_parses_is_whitelisted_and_stable(text: str) -> None:
    try:
        endpoint = parse_endpoint_syntax(text)
    except EndpointError as exc:
        assert exc.reason.isprintable() and "\n" not in exc.reason
        return
    assert WHITELIST.fullmatch(endpoint.render())
    assert parse_endpoint_syntax(endpoint.render()) == endpoint
    assert text.lower() == endpoint.render() or endpoint.kind == "ipv6"


def _hostile_details() -> st.SearchStrategy[str]:
    endpoint_texts = endpoints().map(str) | hostile_text
    fragment = st.one_of(
        hostile_text,
        st.text(max_size=20),
        endpoint_texts.map(lambda text: f"p2p={text}"),
        endpoint_texts.map(lambda text: f'"p2p":"{text}"'),
        st.tuples(endpoints().map(str), hostile_text).map(lambda pair: f"p2p={pair[0]}{pair[1]}"),
    )
    return st.lists(fragment, max_size=5).flatmap(
        lambda parts: st.lists(
            st.sampled_from([" ", "\n", "", ",", '"', "\t"]), min_size=len(parts), max_size=len(parts)
        ).map(lambda seps: "".join(part + sep for part, sep in zip(parts, seps, strict=True)))
    )


@PROPERTY
@given(st.text() | _hostile_details())
def test_hostile_details_never_yield_an_endpoint_they_do_not_contain(details: str) -> None:
    result = extract_endpoint(details, PERMISSIVE)
    if result.status != "valid":
        assert result.endpoint is None and result.reason
        return
    endpoint = result.endpoint
    assert endpoint is not None and result.raw is not None
    assert result.raw in details
    assert f"p2p={result.raw}" in details or f'"{result.raw}"' in details
    assert parse_endpoint(result.raw, PERMISSIVE) == endpoint
    assert WHITELIST.fullmatch(endpoint.render())
    if endpoint.kind == "ipv6":
        inner = result.raw[1 : result.raw.index("]")]
        assert ipaddress.ip_address(inner) == ipaddress.ip_address(endpoint.host)
    else:
        assert endpoint.host in details.lower()
    if endpoint.port is not None:
        assert result.raw.endswith(f":{endpoint.port}")


@PROPERTY
@given(endpoints(), st.text(alphabet=";,$()`'\"\\|&<>@#/=%{}!*?~^", min_size=1, max_size=10))
def test_trailing_junk_is_invalid_never_truncated(endpoint: Endpoint, junk: str) -> None:
    result = extract_endpoint(f"p2p={endpoint}{junk}", PERMISSIVE)
    assert result.status == "invalid"


@PROPERTY
@given(endpoints(), st.sampled_from([" ", "\n", "\t", "\r\n"]), st.text(max_size=20))
def test_published_endpoint_is_found_among_other_text(endpoint: Endpoint, sep: str, other: str) -> None:
    details = f"{other}{sep}p2p={endpoint}{sep}"
    result = extract_endpoint(details, PERMISSIVE)
    if "p2p=" in other or '"p2p"' in other:
        return  # the other text may name an endpoint of its own
    assert result.status in {"valid", "invalid"}
    if result.status == "valid":
        assert result.endpoint == endpoint
