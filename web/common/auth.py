"""JWT issue and check (HS256 only), and the rule of who may act on whom (README, "Access")."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass

import jwt
from aiohttp import web

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

    @property
    def privileged(self) -> bool:
        """Admin and service tokens may act on any user."""
        return self.role in ("admin", "service")

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


def caller_of(request: web.Request, settings: Settings) -> Caller:
    """The authenticated caller of a request, or 401 (missing or bad token)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("UNAUTHORIZED", "missing bearer token", headers={"WWW-Authenticate": 'Bearer realm="herald"'})
    return decode_token(settings, token.strip())


def require_privileged(caller: Caller) -> None:
    if not caller.privileged:
        raise ApiError("FORBIDDEN", "this endpoint needs an admin or service token")


def require_admin(caller: Caller) -> None:
    if caller.role != "admin":
        raise ApiError("FORBIDDEN", "this endpoint needs an admin token")
