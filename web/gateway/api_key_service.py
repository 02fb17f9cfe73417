"""Managing API keys: what the ``/api/v1/api-keys`` endpoints do (README, "API keys").

Every function checks its caller first (an admin signed in with a JWT; never an API key), so no
route can forget it, and answers in the API's shapes: the key object, plus ``key`` in the
creation answer only. Routes are declared elsewhere; these are plain functions of the app.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from aiohttp import web

from models.api_key import NAME_MAX
from models.base import utcnow
from models.dao import api_keys as dao
from models.notification import LIVE, MODES
from web.common.app import in_db
from web.common.auth import Caller, require_key_manager
from web.common.envelope import ApiError, page_meta

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX:
        raise ApiError("VALIDATION_ERROR", f"name must be 1 to {NAME_MAX} characters long")
    if _CONTROL.search(name):
        raise ApiError("VALIDATION_ERROR", "name must not contain control characters")
    return name


def _expiry(expires_at: dt.datetime | None) -> dt.datetime | None:
    """As stored (naive UTC); a time without a zone is taken as UTC. Must lie in the future."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is not None:
        expires_at = expires_at.astimezone(dt.UTC).replace(tzinfo=None)
    if expires_at <= utcnow():
        raise ApiError("VALIDATION_ERROR", "expires_at must be in the future")
    return expires_at


def _key_id(key_id: str) -> str:
    try:
        return str(uuid.UUID(str(key_id)))
    except ValueError:
        raise ApiError("NOT_FOUND", "API key not found") from None


async def create_api_key(
    app: web.Application, caller: Caller, *, name: str, mode: str = LIVE, expires_at: dt.datetime | None = None
) -> dict:
    """201's data: the key object plus ``key``, the only time the key is ever shown.

    Raises:
        ApiError: FORBIDDEN (not an admin JWT), VALIDATION_ERROR (name, mode, expiry in the past).
    """
    require_key_manager(caller)
    name = _name(name)
    if mode not in MODES:
        raise ApiError("VALIDATION_ERROR", f"mode must be one of {', '.join(MODES)}")
    expires = _expiry(expires_at)
    row, key = await in_db(app, dao.create, name=name, mode=mode, expires_at=expires, created_by=caller.sub)
    return {**row.public(), "key": key}


async def list_api_keys(app: web.Application, caller: Caller, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """(items, meta): one page of key objects, newest first, revoked ones included; never a key."""
    require_key_manager(caller)
    total, rows = await in_db(app, dao.listing, page=page, limit=limit)
    return [row.public() for row in rows], page_meta(total=total, limit=limit, page=page)


async def revoke_api_key(app: web.Application, caller: Caller, key_id: str) -> dict:
    """The key object with ``revoked_at`` set (a second revocation keeps the first time). Every
    gateway process refuses the key within 5 s (``web.common.api_key_auth.KEY_CACHE_S``).

    Raises:
        ApiError: FORBIDDEN, NOT_FOUND.
    """
    require_key_manager(caller)
    row = await in_db(app, dao.revoke, _key_id(key_id))
    if row is None:
        raise ApiError("NOT_FOUND", "API key not found")
    return row.public()
