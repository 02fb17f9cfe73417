"""Where a webhook may be sent: the URL rules and the address policy (README, "Webhooks").

A webhook URL is given by an admin but fetched by Herald from inside the deployment, so it must not
become a way to reach what only Herald can reach (server-side request forgery). The URL must be
http or https, with a host and no credentials. Every address the host resolves to is checked, and
one bad address refuses the whole URL (a name that resolves to a public and a private address
must not get through on the public one):

- link-local (the cloud metadata address 169.254.169.254 among them), multicast, unspecified,
  reserved and ``0.0.0.0/8`` addresses: always refused;
- loopback, private and other non-global addresses (RFC 1918, unique-local, CGNAT, documentation
  ranges): refused unless ``WEBHOOK_ALLOW_PRIVATE`` is true.

IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4, Teredo) are
judged by that address too. The same check runs when a subscription is made and again before
every send, and the sender connects to the addresses checked, never to a fresh lookup (a name can
change what it resolves to).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = {"http": 80, "https": 443}
PUBLIC, PRIVATE, FORBIDDEN = "public", "private", "forbidden"

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not receive webhooks; ``str()`` says why, fit for an API answer."""


class Unresolvable(UrlRefused):
    """The host does not resolve now (it may later: at send time this is worth a retry)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``addresses``, in order) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def _embedded(address: Address) -> list[Address]:
    """What to judge: an IPv4-mapped or NAT64 address is only a wrapper around its IPv4 address
    (the wrapper itself counts as reserved); 6to4 and Teredo are judged as themselves and by the
    IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    found: list[Address] = [address]
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def _kind(address: Address) -> str:
    if address.is_loopback:
        return PRIVATE  # before "reserved": ::1 is both
    if (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK)
    ):
        return FORBIDDEN
    if address.is_private or getattr(address, "is_site_local", False) or not address.is_global:
        return PRIVATE
    return PUBLIC


def classify(address: str | Address) -> str:
    """``public``, ``private`` (allowed only with ``WEBHOOK_ALLOW_PRIVATE``) or ``forbidden``."""
    parsed = ipaddress.ip_address(address) if isinstance(address, str) else address
    kinds = {_kind(a) for a in _embedded(parsed)}
    for kind in (FORBIDDEN, PRIVATE):
        if kind in kinds:
            return kind
    return PUBLIC


def check_address(address: str, *, allow_private: bool) -> None:
    """Raises :class:`UrlRefused` unless ``address`` may receive a webhook."""
    kind = classify(address)
    if kind == FORBIDDEN or (kind == PRIVATE and not allow_private):
        what = "a link-local, multicast, unspecified or reserved" if kind == FORBIDDEN else "a loopback or private"
        raise UrlRefused(f"the webhook host resolves to {what} address ({address}), which Herald does not call")


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an acceptable URL; nothing is resolved.

    Raises:
        UrlRefused: not http(s), no host, credentials in the URL, a bad port or stray characters.
    """
    if not isinstance(url, str) or _UNSAFE_CHARACTERS.search(url):
        raise UrlRefused("the webhook URL must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("the webhook URL is malformed (check its host and port)") from None
    if parts.scheme not in SCHEMES:
        raise UrlRefused("the webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise UrlRefused("the webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        # Every GET would show them; the signature is how a receiver knows the call is Herald's.
        raise UrlRefused("the webhook URL must not carry credentials; check the X-Herald-Signature instead")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise UrlRefused("the webhook URL's host is not a valid name") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or SCHEMES[parts.scheme], path


def resolve(url: str, *, allow_private: bool, getaddrinfo: Callable[..., list] = socket.getaddrinfo) -> Target:
    """Check ``url`` and every address its host resolves to; the target to connect to.

    Raises:
        Unresolvable: the name does not resolve (now).
        UrlRefused: the URL or one of its addresses is not allowed.
    """
    scheme, host, port, path = parse(url)
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"the webhook host {host!r} does not resolve ({exc})") from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Unresolvable(f"the webhook host {host!r} does not resolve")
    for address in addresses:
        check_address(address, allow_private=allow_private)
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)
