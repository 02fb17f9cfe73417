"""Brute-force limits on logins, per account and per client address (README, "Access").

Failures are counted in Redis in fixed windows of ``LOGIN_WINDOW_S`` (15 minutes) that start at
an account's or an address's first failure. Once either count reaches its limit, logins for it are
refused *before* the password is checked, so the refusal is the same whether the password was right
or not and whether the account exists: it tells an attacker nothing. Unknown e-mails are counted
like known ones for the same reason. A success clears its account's count, not its address's.

The API's login (the user service) applies it, and the operator console signs in through that
same API, relaying the browser's address, so there is one rule and one set of counters.

Redis is not the record of anything here: when it cannot be reached the limits are not applied
(logged), rather than every login failing with it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math

import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web

from models.redis_keys import LOGIN_WINDOW_S, RedisKeys
from web.common.envelope import ApiError

log = logging.getLogger(__name__)

#: Failed logins allowed per window for one account (e-mail), and for one client address.
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20

_ERRORS = (redis.exceptions.RedisError, OSError)


class LoginLimiter:
    """Counts failed logins and says how long an account or address must wait.

    Parameters:
        redis: an asyncio Redis client.
        keys: the install's key names (``login_failures``).
        account_limit, address_limit: failures allowed per window (5 and 20 by default).
        window_s: the window, seconds (``LOGIN_WINDOW_S`` by default).
    """

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        keys: RedisKeys,
        account_limit: int = ACCOUNT_LIMIT,
        address_limit: int = ADDRESS_LIMIT,
        window_s: int = LOGIN_WINDOW_S,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = (account_limit, address_limit)
        self.window_s = window_s

    def _keys(self, email: str, address: str) -> tuple[str, str]:
        # A digest, so the key names hold no e-mail address.
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return self.keys.login_failures("account", account), self.keys.login_failures("address", address)

    async def wait_s(self, email: str, address: str) -> int:
        """Seconds until a login for ``email`` from ``address`` may be tried again; 0: now."""
        keys = self._keys(email, address)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            account, account_ttl, by_address, address_ttl = await pipe.execute()
        except _ERRORS as exc:
            log.warning("login limits not checked (Redis unavailable): %s", type(exc).__name__)
            return 0
        wait = 0
        for count, ttl, limit in ((account, account_ttl, self.limits[0]), (by_address, address_ttl, self.limits[1])):
            if count is not None and int(count) >= limit:
                wait = max(wait, ttl if ttl > 0 else self.window_s)
        return wait

    async def failed(self, email: str, address: str) -> None:
        """Count a failed login for the account and the address; the first failure opens the window."""
        try:
            pipe = self.redis.pipeline(transaction=True)
            for key in self._keys(email, address):
                pipe.set(key, 0, ex=self.window_s, nx=True)
                pipe.incr(key)
            await pipe.execute()
        except _ERRORS as exc:
            log.warning("failed login not counted (Redis unavailable): %s", type(exc).__name__)

    async def succeeded(self, email: str) -> None:
        """Clear the account's count: its owner got in."""
        try:
            await self.redis.delete(self._keys(email, "")[0])
        except _ERRORS as exc:
            log.warning("login count not cleared (Redis unavailable): %s", type(exc).__name__)


def refusal(wait_s: int) -> ApiError:
    """The 429 of a locked account or address: the same words whatever the password was."""
    minutes = max(1, math.ceil(wait_s / 60))
    return ApiError(
        "RATE_LIMITED",
        f"too many failed logins for this account or from this address; try again in {minutes} minute(s)",
        headers={"Retry-After": str(wait_s)},
        data={"retry_after": wait_s},
    )


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


#: Networks a proxy in front of Herald (or the gateway relaying a login) may sit on: loopback,
#: RFC 1918, shared address space (some clusters' pod networks), link-local and unique local.
PROXY_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in PROXY_NETWORKS if net.version == ip.version)


def client_address(request: web.Request) -> str:
    """The address ``request`` came from, as far as it can be trusted (:func:`address_from`)."""
    return address_from(request.remote or "", request.headers.get("X-Forwarded-For", ""))


def address_from(peer: str, forwarded: str) -> str:
    """The client's address from the peer's and an ``X-Forwarded-For`` value.

    The peer's address, unless the peer is on a private or loopback network (a proxy in front of
    Herald, or the gateway relaying a login): then ``forwarded`` is walked from its right end, past
    the private addresses (more proxies), to the first public one. A client on the internet cannot
    choose its address this way: whatever it writes into the header stands to the left of the
    address its first proxy appends. Only a client on the private network itself can.
    """
    ip = _ip(peer)
    if ip is None:
        return peer or "unknown"
    if not _internal(ip):
        return str(ip)
    for part in reversed([part for part in forwarded.split(",") if part.strip()]):
        hop = _ip(part)
        if hop is None:
            break
        ip = hop
        if not _internal(hop):
            break
    return str(ip)


def forwarded_for(request: web.Request) -> str:
    """``X-Forwarded-For`` for a request relayed onward: what came in, plus this request's peer."""
    incoming = request.headers.get("X-Forwarded-For", "").strip()
    peer = request.remote or "unknown"
    return f"{incoming}, {peer}" if incoming else peer
