"""Who is calling: JWTs issued and checked (HS256 only), API keys told apart from them, and the
rule of who may act on whom (README, "Access", "API keys")."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import jwt
from aiohttp import web

from models import api_key
from models.notification import LIVE
from settings import Settings
from web.common.envelope import ApiError

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub", "role", "iat"]
#: Seconds of clock skew tolerated on ``exp``.
LEEWAY_S = 5
ROLES = ("admin", "service", "user")


@dataclass(frozen=True)
class Caller:
    sub: str
    role: str
    #: ``test`` for an ``hk_test_`` API key: its sends use the simulated providers.
    mode: str = LIVE

    @property
    def privileged(self) -> bool:
        """Admin and service tokens may act on any user."""
        return self.role in ("admin", "service")

    @property
    def is_api_key(self) -> bool:
        """Whether the caller is an application's API key rather than a signed-in token."""
        return self.sub.startswith(api_key.SUBJECT_PREFIX)

    def may_act_on(self, user_id: str) -> bool:
        return self.privileged or self.sub == user_id


def issue_token(settings: Settings, *, sub: str, role: str, ttl_s: int | None = None) -> str:
    now = int(time.time())
    claims = {
        "sub": sub,
        "role": role,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + (ttl_s or settings.jwt_ttl_s),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def decode_token(settings: Settings, token: str) -> Caller:
    """Check signature, algorithm, expiry, issuer, audience and claims; 401 on any failure."""
    sub, role, expires = _verified(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, token)
    if time.time() > expires + LEEWAY_S:
        raise ApiError("UNAUTHORIZED", "token has expired")
    return Caller(sub=sub, role=role)


@functools.lru_cache(maxsize=4096)
def _verified(secret: str, issuer: str, audience: str, token: str) -> tuple[str, str, int]:
    """(sub, role, exp) of a token whose signature and claims check out.

    Memoised: a client sends the same token with every request, and verifying it is a measurable
    share of a send's CPU. Only successes are kept (a failure raises), and expiry is checked again
    by the caller on every use.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_S,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise ApiError("UNAUTHORIZED", "token has expired") from None
    except jwt.InvalidTokenError:
        raise ApiError("UNAUTHORIZED", "token is invalid") from None
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub or role not in ROLES:
        raise ApiError("UNAUTHORIZED", "token is invalid")
    return sub, role, int(claims["exp"])


def bearer_of(request: web.Request) -> str:
    """The request's bearer string (a JWT or an API key), or 401 when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("UNAUTHORIZED", "missing bearer token", headers={"WWW-Authenticate": 'Bearer realm="herald"'})
    return token.strip()


def caller_of(request: web.Request, settings: Settings) -> Caller:
    """The caller of a request bearing a JWT, or 401 (missing or bad token)."""
    return decode_token(settings, bearer_of(request))


class KeyAuthenticator(Protocol):
    async def authenticate(self, key: str) -> Caller: ...


async def authenticate(request: web.Request, settings: Settings, api_keys: KeyAuthenticator) -> Caller:
    """The caller of a request bearing a JWT or an API key (``hk_live_...``, ``hk_test_...``), or 401.

    ``api_keys`` is the process's :class:`web.common.api_key_auth.ApiKeyAuthenticator`.
    """
    token = bearer_of(request)
    if api_key.looks_like_key(token):
        return await api_keys.authenticate(token)
    return decode_token(settings, token)


def require_privileged(caller: Caller) -> None:
    if not caller.privileged:
        raise ApiError("FORBIDDEN", "this endpoint needs an admin or service token")


def require_admin(caller: Caller) -> None:
    if caller.role != "admin":
        raise ApiError("FORBIDDEN", "this endpoint needs an admin token")


def require_key_manager(caller: Caller) -> None:
    """API keys and webhooks are managed by an admin signed in with a JWT, never by an API key
    (which would let a leaked key mint more keys or redirect outcomes)."""
    if caller.is_api_key:
        raise ApiError("FORBIDDEN", "an API key cannot manage API keys or webhooks; use an admin token")
    require_admin(caller)
