"""User and template lookups for the send path: Redis first, then the owning service's REST API.

The services fill and drop these cache keys themselves; the gateway only reads them, and on a
miss asks the service (which fills the cache for the next request). The gateway calls the
services with a short-lived service token it signs itself. Identical calls in flight at once share
one request: a batch to one user, or a burst after a cache entry was dropped, would otherwise send
the service hundreds of identical GETs, queue behind the client's connection limit and time out.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis

from models.redis_keys import RedisKeys
from models.template import DEFAULT_LANGUAGE
from settings import Settings
from web.common.auth import issue_token
from web.common.envelope import ApiError

#: Seconds for a call to the user or template service before the send answers 503.
SERVICE_TIMEOUT = aiohttp.ClientTimeout(total=3, connect=1)


class ServiceClient:
    """Calls the user and template services as the ``gateway`` service principal."""

    def __init__(self, *, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self._token = ""
        self._token_expires = 0.0
        self._in_flight: dict[tuple, asyncio.Future] = {}

    def token(self) -> str:
        now = time.time()
        if now > self._token_expires - 60:
            ttl = min(self.settings.jwt_ttl_s, 3600)
            self._token = issue_token(self.settings, sub="gateway", role="service", ttl_s=ttl)
            self._token_expires = now + ttl
        return self._token

    async def get(self, base: str, path: str, *, correlation_id: str, params: dict | None = None) -> dict | None:
        """The ``data`` of a GET, ``None`` on 404, :class:`ApiError` 503 when the service fails.
        Callers of the same GET while one is in flight share it (and its correlation id); the data
        is shared too, so callers only read it."""
        key = (base, path, tuple(sorted((params or {}).items())))
        shared = self._in_flight.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._get(base, path, correlation_id=correlation_id, params=params))
            self._in_flight[key] = shared
            shared.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(shared)

    def _finished(self, key: tuple, done: asyncio.Future) -> None:
        self._in_flight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every caller stopped waiting

    async def _get(self, base: str, path: str, *, correlation_id: str, params: dict | None) -> dict | None:
        headers = {"Authorization": f"Bearer {self.token()}", "X-Correlation-ID": correlation_id}
        try:
            async with self.session.get(base + path, params=params, headers=headers, timeout=SERVICE_TIMEOUT) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise ApiError("SERVICE_UNAVAILABLE", f"upstream service answered {resp.status}")
                return (await resp.json())["data"]
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            raise ApiError(
                "SERVICE_UNAVAILABLE",
                "a required service is unavailable; try again shortly",
                headers={"Retry-After": "5"},
            ) from None


class Lookups:
    def __init__(self, *, redis: aioredis.Redis, keys: RedisKeys, client: ServiceClient, settings: Settings) -> None:
        self.redis = redis
        self.keys = keys
        self.client = client
        self.settings = settings

    def queue_cached(self, pipe, user_id: str, code: str) -> None:
        """Add the cache reads of the user and the English template to ``pipe`` (two results)."""
        self.queue_user(pipe, user_id)
        self.queue_template(pipe, code)

    def queue_user(self, pipe, user_id: str) -> None:
        pipe.get(self.keys.user(user_id))

    def queue_template(self, pipe, code: str) -> None:
        pipe.get(self.keys.template(code, DEFAULT_LANGUAGE))

    async def user(self, user_id: str, cached: str | None, *, correlation_id: str) -> dict | None:
        if cached:
            return json.loads(cached)
        return await self.client.get(
            self.settings.user_service_url, f"/api/v1/users/{user_id}", correlation_id=correlation_id
        )

    async def template(
        self, code: str, language: str, cached_default: str | None, *, correlation_id: str
    ) -> dict | None:
        """The template in ``language``, else in English (the service applies the same fallback)."""
        cached = (
            cached_default if language == DEFAULT_LANGUAGE else await self.redis.get(self.keys.template(code, language))
        )
        if cached:
            return json.loads(cached)
        return await self.client.get(
            self.settings.template_service_url,
            f"/api/v1/templates/{quote(code, safe='')}",
            params={"language": language},
            correlation_id=correlation_id,
        )
