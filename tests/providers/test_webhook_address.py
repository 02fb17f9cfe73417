"""Which URLs and addresses may receive webhooks (README, "Webhooks", Safety)."""

from __future__ import annotations

import socket

import pytest

from providers.webhook_address import (
    FORBIDDEN,
    PRIVATE,
    PUBLIC,
    Unresolvable,
    UrlRefused,
    check_address,
    classify,
    parse,
    resolve,
)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", PUBLIC),
        ("2606:2800:220:1:248:1893:25c8:1946", PUBLIC),
        ("169.254.169.254", FORBIDDEN),  # the cloud metadata address
        ("fe80::1", FORBIDDEN),
        ("224.0.0.1", FORBIDDEN),
        ("ff02::1", FORBIDDEN),
        ("0.0.0.0", FORBIDDEN),
        ("::", FORBIDDEN),
        ("0.1.2.3", FORBIDDEN),
        ("240.0.0.1", FORBIDDEN),
        ("255.255.255.255", FORBIDDEN),
        ("127.0.0.1", PRIVATE),
        ("127.8.9.10", PRIVATE),
        ("::1", PRIVATE),
        ("10.1.2.3", PRIVATE),
        ("172.16.0.1", PRIVATE),
        ("192.168.1.1", PRIVATE),
        ("100.64.0.1", PRIVATE),  # carrier-grade NAT: not global
        ("fc00::1", PRIVATE),
        ("fec0::1", PRIVATE),  # site-local
        # IPv6 forms carrying an IPv4 address are judged by it too
        ("::ffff:169.254.169.254", FORBIDDEN),
        ("::ffff:127.0.0.1", PRIVATE),
        ("64:ff9b::a9fe:a9fe", FORBIDDEN),  # NAT64 of 169.254.169.254
        ("64:ff9b::a00:1", PRIVATE),  # NAT64 of 10.0.0.1
        ("2002:a9fe:a9fe::1", FORBIDDEN),  # 6to4 of 169.254.169.254
    ],
)
def test_addresses_are_classified(address, kind):
    assert classify(address) == kind


def test_private_addresses_pass_only_when_allowed_and_forbidden_ones_never():
    check_address("10.0.0.1", allow_private=True)
    with pytest.raises(UrlRefused, match="loopback or private"):
        check_address("10.0.0.1", allow_private=False)
    for allow in (False, True):
        with pytest.raises(UrlRefused, match="link-local"):
            check_address("169.254.169.254", allow_private=allow)
    check_address("93.184.216.34", allow_private=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://example.com/", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http:///hook", "no host"),
        ("https://user:pass@example.com/hook", "credentials"),
        ("https://example.com:99999/hook", "malformed"),
        ("https://example.com/a b", "spaces"),
        ("https://example.com/\r\nX-Evil: 1", "control characters"),
        ("https://example.com\\@evil.com/", "backslashes"),
    ],
)
def test_urls_are_refused_with_a_reason(url, why):
    with pytest.raises(UrlRefused, match=why):
        parse(url)


def test_a_url_is_split_into_what_to_connect_to_and_what_to_ask():
    assert parse("https://Example.COM/hooks/in?x=1#frag") == ("https", "example.com", 443, "/hooks/in?x=1")
    assert parse("http://example.com:8080") == ("http", "example.com", 8080, "/")
    assert parse("http://[::1]:9000/h") == ("http", "::1", 9000, "/h")


def answers(*addresses):
    """A name lookup that answers ``addresses`` and counts its calls."""
    calls = []

    def getaddrinfo(host, port, type=0):
        calls.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    getaddrinfo.calls = calls
    return getaddrinfo


def test_every_resolved_address_is_checked():
    target = resolve("https://hooks.example/in", allow_private=False, getaddrinfo=answers("93.184.216.34"))
    assert target.addresses == ("93.184.216.34",) and (target.host, target.port) == ("hooks.example", 443)
    # one private address among public ones refuses the whole name
    with pytest.raises(UrlRefused, match="private"):
        resolve("https://hooks.example/in", allow_private=False, getaddrinfo=answers("93.184.216.34", "10.0.0.7"))
    with pytest.raises(UrlRefused, match="link-local"):
        resolve("http://metadata.internal/", allow_private=True, getaddrinfo=answers("169.254.169.254"))


def test_a_name_that_resolves_to_a_private_address_is_refused_unless_allowed():
    # the real resolver: localhost is loopback
    with pytest.raises(UrlRefused, match="loopback or private"):
        resolve("http://localhost:8080/hook", allow_private=False)
    target = resolve("http://localhost:8080/hook", allow_private=True)
    assert target.addresses and all(classify(a) == PRIVATE for a in target.addresses)


def test_the_metadata_address_is_refused_literally_too():
    with pytest.raises(UrlRefused, match="link-local"):
        resolve("http://169.254.169.254/latest/meta-data/", allow_private=True)


def test_a_name_that_does_not_resolve_is_its_own_error():
    def nowhere(host, port, type=0):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(Unresolvable, match="does not resolve"):
        resolve("https://no-such-host.invalid/", allow_private=False, getaddrinfo=nowhere)
