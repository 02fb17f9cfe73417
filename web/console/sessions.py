"""Console sessions: kept in Redis, named by a random cookie (README, "Operator console").

The cookie holds only a random id; Redis holds, under a digest of it, who signed in, the session's
CSRF token and when it started. Signing out deletes the key, so a copied cookie stops working at
once (a signed cookie would stay valid until it expired). A session ends 8 hours after sign-in or
after an hour unused, whichever comes first; the key's lifetime enforces the idle limit and the
stored start time the absolute one.

The cookie is ``HttpOnly``, ``SameSite=Lax``, ``Path=/admin``, and ``Secure`` when the request came
over HTTPS, directly or through a proxy that says so with ``X-Forwarded-Proto: https``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from models.redis_keys import CONSOLE_IDLE_TTL_S, CONSOLE_SESSION_TTL_S, RedisKeys

log = logging.getLogger(__name__)

COOKIE = "herald_console"
#: The sign-in form's own cookie: a nonce its CSRF token is bound to (there is no session yet).
LOGIN_COOKIE = "herald_console_login"
LOGIN_COOKIE_TTL_S = 3600
PATH = "/admin"


@dataclass
class Session:
    """A signed-in admin. ``flash`` is a one-line notice shown once, on the next page."""

    digest: str
    admin_id: str
    email: str
    name: str
    csrf: str
    started: float
    checked: float
    flash: str | None = None

    def fields(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "digest"}


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class SessionStore:
    """Creates, loads, updates and ends sessions in Redis."""

    def __init__(self, *, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(self, *, admin_id: str, email: str, name: str) -> tuple[str, Session]:
        """A new session (a new id at every sign-in: no fixation); (cookie value, session)."""
        cookie = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(
            digest=_digest(cookie),
            admin_id=admin_id,
            email=email,
            name=name,
            csrf=secrets.token_urlsafe(32),
            started=now,
            checked=now,
        )
        await self.save(session)
        return cookie, session

    def _ttl(self, session: Session) -> int:
        remaining = int(session.started + CONSOLE_SESSION_TTL_S - time.time())
        return max(1, min(CONSOLE_IDLE_TTL_S, remaining))

    async def save(self, session: Session) -> None:
        """Write the session; its key's lifetime restarts (the idle limit counts from now)."""
        key = self.keys.console_session(session.digest)
        await self.redis.set(key, json.dumps(session.fields()), ex=self._ttl(session))

    async def load(self, cookie: str | None) -> Session | None:
        """The live session of a cookie, its idle time restarted; ``None`` when there is none."""
        if not cookie or len(cookie) > 100:
            return None
        digest = _digest(cookie)
        key = self.keys.console_session(digest)
        raw = await self.redis.get(key)
        if raw is None:
            return None
        try:
            session = Session(digest=digest, **json.loads(raw))
        except (ValueError, TypeError):
            await self.redis.delete(key)
            return None
        if time.time() >= session.started + CONSOLE_SESSION_TTL_S:
            await self.redis.delete(key)
            return None
        await self.redis.expire(key, self._ttl(session))
        return session

    async def destroy(self, session: Session) -> None:
        await self.redis.delete(self.keys.console_session(session.digest))


def is_https(request: web.Request) -> bool:
    """Whether the browser reached Herald over HTTPS (itself, or through a TLS-terminating proxy)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="Lax",
        secure=is_https(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    set_cookie(response, request, name, "", 0)
