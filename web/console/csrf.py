"""CSRF tokens for the console's forms (README, "Operator console").

Every POST the console accepts carries a token a cross-site page cannot know, in the form field
``csrf_token`` or, from the console's own scripts, the header ``X-CSRF-Token``; a POST without a
valid one is refused with 403 before its handler runs.

- Signed in: the session's random token, stored with the session in Redis.
- The sign-in form (no session yet): an HMAC, keyed from ``JWT_SECRET``, of a random nonce kept in
  a cookie of its own; a page on another site can neither read that cookie nor compute the HMAC,
  so it cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from settings import Settings
from web.console.sessions import Session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def login_key(settings: Settings) -> bytes:
    """The sign-in form's HMAC key: derived from ``JWT_SECRET``, never the secret itself."""
    return hmac.new(settings.jwt_secret.encode(), b"herald console sign-in form", hashlib.sha256).digest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_token(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def login_token_valid(key: bytes, nonce: str | None, submitted: str | None) -> bool:
    if not nonce or not submitted:
        return False
    return hmac.compare_digest(login_token(key, nonce), submitted)


async def submitted(request: web.Request) -> str | None:
    """The token a POST carries, from its header or its form."""
    header = request.headers.get(HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(FIELD)
        return value if isinstance(value, str) else None
    return None


def session_token_valid(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf, token)
