"""The user service's rules: who may do what, password hashing and the profile cache (the requests
arrive checked against :mod:`web.users.schemas`).

The cache value under ``user:<id>`` is exactly ``User.public()`` as JSON because the gateway reads
the same key to learn a recipient's e-mail, push token and preferences. Redis is an accelerator
here, not a record: when it is unreachable reads fall back to PostgreSQL and the failure is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import msgspec
import redis
from aiohttp import web
from msgspec import UNSET

from models import passwords
from models.dao import users as dao
from models.redis_keys import USER_TTL_S
from web.common import app_keys
from web.common.app import in_db
from web.common.auth import Caller, issue_token
from web.common.envelope import ApiError
from web.common.login_limits import LoginLimiter, refusal
from web.users.schemas import LoginRequest, Preferences, UserCreate, UserUpdate

log = logging.getLogger(__name__)

ADMIN_ONLY_FIELDS = ("role", "is_active")
#: One message for every failed login, so a response never tells which part was wrong.
BAD_LOGIN = "invalid email or password"


def _require_admin_for(body: UserCreate | UserUpdate, caller: Caller | None) -> None:
    sent = [name for name in ADMIN_ONLY_FIELDS if getattr(body, name, UNSET) is not UNSET]
    if sent and (caller is None or caller.role != "admin"):
        raise ApiError("FORBIDDEN", f"only an admin may set {', '.join(sent)}")


def _preferences(prefs: Preferences | None, *, partial: bool) -> dict[str, Any] | None:
    """On registration, every channel with its default; in a change, only what was sent (a
    ``None`` language is then dropped by the query, a null channel left as it was)."""
    if prefs is None:
        return None if partial else {"email": True, "push": True}
    out: dict[str, Any] = {}
    for channel in ("email", "push"):
        value = getattr(prefs, channel)
        if value is not None:
            out[channel] = value
        elif not partial:
            out[channel] = True
    if prefs.language is not UNSET and (prefs.language is not None or partial):
        out["language"] = prefs.language
    return out


def _check_access(caller: Caller, user_id: str) -> None:
    """Someone else's profile answers exactly like a missing one, so existence never leaks."""
    if not caller.may_act_on(user_id):
        raise ApiError("NOT_FOUND", "user not found")


# --- cache --------------------------------------------------------------------------------------


def _cache_key(app: web.Application, user_id: str) -> str:
    return app[app_keys.redis_keys_key].user(user_id)


async def _cache_get(app: web.Application, user_id: str) -> dict | None:
    try:
        raw = await app[app_keys.redis_key].get(_cache_key(app, user_id))
    except redis.RedisError as exc:
        log.warning("user cache read failed, using the database: %s", exc)
        return None
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def _cache_put(app: web.Application, user: dict) -> None:
    try:
        await app[app_keys.redis_key].set(_cache_key(app, user["id"]), json.dumps(user), ex=USER_TTL_S)
    except redis.RedisError as exc:
        log.warning("user cache fill failed: %s", exc)


async def _cache_drop(app: web.Application, user_id: str) -> None:
    """After a change commits; if Redis is unreachable the stale copy lives at most USER_TTL_S."""
    try:
        await app[app_keys.redis_key].delete(_cache_key(app, user_id))
    except redis.RedisError as exc:
        log.error("user cache invalidation failed for %s: %s", user_id, exc)


# --- password hashing off the event loop --------------------------------------------------------


async def _cpu(app: web.Application, fn, *args):
    """scrypt takes ~50 ms of CPU; on the loop it would stall every other request."""
    return await asyncio.get_running_loop().run_in_executor(app[app_keys.db_executor_key], fn, *args)


# --- operations ---------------------------------------------------------------------------------


async def create_user(app: web.Application, body: UserCreate, caller: Caller | None) -> dict:
    _require_admin_for(body, caller)
    fields = {
        "name": body.name,
        "email": body.email.lower(),
        "push_token": body.push_token,
        "preferences": _preferences(body.preferences, partial=False),
        "role": "user" if body.role is UNSET else body.role,
    }
    fields["password_hash"] = await _cpu(app, passwords.hash_password, body.password)
    try:
        user = await in_db(app, dao.create, **fields)
    except dao.EmailTaken:
        raise ApiError("CONFLICT", "a user with this email already exists") from None
    log.info("user created", extra={"user_id": str(user.id), "role": user.role})
    return user.public()


async def list_users(
    app: web.Application, *, page: int, limit: int, email: str | None = None, search: str | None = None
) -> tuple[int, list[dict]]:
    def run() -> tuple[int, list[dict]]:
        total, rows = dao.listing(page=page, limit=limit, email=email, search=search)
        return total, [row.public() for row in rows]

    return await in_db(app, run)


async def get_user(app: web.Application, caller: Caller, user_id: str) -> dict:
    _check_access(caller, user_id)
    cached = await _cache_get(app, user_id)
    if cached is not None:
        return cached
    user = await in_db(app, dao.get, user_id)
    if user is None:
        raise ApiError("NOT_FOUND", "user not found")
    public = user.public()
    await _cache_put(app, public)
    return public


async def update_user(app: web.Application, caller: Caller, user_id: str, body: UserUpdate) -> dict:
    _check_access(caller, user_id)
    sent = {name: value for name, value in msgspec.structs.asdict(body).items() if value is not UNSET}
    if not sent:
        raise ApiError(
            "VALIDATION_ERROR", f"nothing to update; send any of {', '.join(sorted(body.__struct_fields__))}"
        )
    _require_admin_for(body, caller)
    changes = {k: v for k, v in sent.items() if k in ("name", "push_token", "role", "is_active")}
    if "email" in sent:
        changes["email"] = body.email.lower()
    preferences = _preferences(body.preferences, partial=True) if "preferences" in sent else None
    if "password" in sent:
        changes["password_hash"] = await _cpu(app, passwords.hash_password, body.password)
    try:
        user = await in_db(app, dao.update, user_id, changes, preferences=preferences)
    except dao.EmailTaken:
        raise ApiError("CONFLICT", "a user with this email already exists") from None
    if user is None:
        raise ApiError("NOT_FOUND", "user not found")
    await _cache_drop(app, user_id)
    log.info("user updated", extra={"user_id": user_id, "fields": sorted(sent)})
    return user.public()


async def deactivate_user(app: web.Application, caller: Caller, user_id: str) -> dict:
    _check_access(caller, user_id)
    user = await in_db(app, dao.deactivate, user_id)
    if user is None:
        raise ApiError("NOT_FOUND", "user not found")
    await _cache_drop(app, user_id)
    log.info("user deactivated", extra={"user_id": user_id})
    return user.public()


async def login(app: web.Application, body: LoginRequest, *, address: str) -> dict:
    """A token for a right e-mail and password of an active user; ``address`` is the client's, for
    the brute-force limits (:mod:`web.common.login_limits`), judged before the password."""
    email = body.email.lower()
    limiter = LoginLimiter(redis=app[app_keys.redis_key], keys=app[app_keys.redis_keys_key])
    wait = await limiter.wait_s(email, address)
    if wait:
        log.warning("login refused: too many failures", extra={"client_address": address})
        raise refusal(wait)
    user = await in_db(app, dao.get_by_email, email)
    # Verify even when there is no such user, so the answer takes the same time either way.
    stored = user.password_hash if user is not None else await _cpu(app, passwords.dummy_hash)
    good = await _cpu(app, passwords.verify_password, body.password, stored)
    if user is None or not good or not user.is_active:
        await limiter.failed(email, address)
        raise ApiError("UNAUTHORIZED", BAD_LOGIN)
    await limiter.succeeded(email)
    settings = app[app_keys.settings_key]
    token = issue_token(settings, sub=str(user.id), role=user.role)
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.jwt_ttl_s}
