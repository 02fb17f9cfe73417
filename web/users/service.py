"""The user service's rules: validation, who may do what, password hashing and the profile cache.

The cache value under ``user:<id>`` is exactly ``User.public()`` as JSON because the gateway reads
the same key to learn a recipient's e-mail, push token and preferences. Redis is an accelerator
here, not a record: when it is unreachable reads fall back to PostgreSQL and the failure is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import redis
from aiohttp import web

from models import passwords
from models.dao import users as dao
from models.redis_keys import USER_TTL_S
from models.template import LANGUAGE_RE
from models.user import ROLES
from web.common import app_keys
from web.common import validation as v
from web.common.app import in_db
from web.common.auth import Caller, issue_token
from web.common.envelope import ApiError
from web.common.login_limits import LoginLimiter, refusal

log = logging.getLogger(__name__)

PASSWORD_MIN, PASSWORD_MAX = 8, 256
PUSH_TOKEN_MAX = 4096
CREATE_FIELDS = {"name", "email", "password", "push_token", "preferences", "role"}
PATCH_FIELDS = {"name", "email", "password", "push_token", "preferences", "is_active", "role"}
ADMIN_ONLY_FIELDS = ("role", "is_active")
PREFERENCE_FIELDS = {"email", "push", "language"}
#: One message for every failed login, so a response never tells which part was wrong.
BAD_LOGIN = "invalid email or password"


# --- validation ---------------------------------------------------------------------------------


def _preferences(body: dict, *, partial: bool) -> dict[str, Any] | None:
    """Checked preferences; on create, defaults filled in; on PATCH, only what was sent."""
    prefs = v.obj(body, "preferences", default=None)
    if prefs is None:
        return None if partial else {"email": True, "push": True}
    unknown = sorted(set(prefs) - PREFERENCE_FIELDS)
    if unknown:
        raise v.fail(f"unknown field(s) in preferences: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for channel in ("email", "push"):
        if channel in prefs and prefs[channel] is not None and not isinstance(prefs[channel], bool):
            raise v.fail(f"preferences.{channel} must be true or false")
        if prefs.get(channel) is not None:
            out[channel] = prefs[channel]
        elif not partial:
            out[channel] = True
    if "language" in prefs:
        language = prefs["language"]
        if language is not None and (not isinstance(language, str) or not LANGUAGE_RE.match(language)):
            raise v.fail('preferences.language must be a language tag such as "en", "fr" or "pt-BR"')
        if language is not None or partial:
            out["language"] = language
    return out


def _role(body: dict) -> str:
    role = body["role"]
    if role not in ROLES:
        raise v.fail(f"role must be one of {', '.join(ROLES)}")
    return role


def _name(body: dict, *, required: bool) -> str | None:
    return v.string(body, "name", required=required, max_len=200, single_line=True)


def _password(body: dict, *, required: bool) -> str | None:
    return v.string(body, "password", required=required, min_len=PASSWORD_MIN, max_len=PASSWORD_MAX)


def _push_token(body: dict) -> str | None:
    return v.string(body, "push_token", required=False, max_len=PUSH_TOKEN_MAX, single_line=True)


def _require_admin_for(body: dict, caller: Caller | None) -> None:
    sent = [name for name in ADMIN_ONLY_FIELDS if name in body]
    if sent and (caller is None or caller.role != "admin"):
        raise ApiError("FORBIDDEN", f"only an admin may set {', '.join(sent)}")


def path_user_id(raw: str) -> str:
    """A malformed id cannot name a user, so it is a 404 like any unknown id."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError("NOT_FOUND", "user not found") from None


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


async def create_user(app: web.Application, body: dict, caller: Caller | None) -> dict:
    v.reject_unknown(body, CREATE_FIELDS)
    _require_admin_for(body, caller)
    fields = {
        "name": _name(body, required=True),
        "email": v.email(body),
        "push_token": _push_token(body),
        "preferences": _preferences(body, partial=False),
        "role": _role(body) if "role" in body else "user",
    }
    password = _password(body, required=True)
    fields["password_hash"] = await _cpu(app, passwords.hash_password, password)
    try:
        user = await in_db(app, dao.create, **fields)
    except dao.EmailTaken:
        raise ApiError("CONFLICT", "a user with this email already exists") from None
    log.info("user created", extra={"user_id": str(user.id), "role": user.role})
    return user.public()


def list_filters(query) -> dict[str, str]:
    """The listing's optional filters: ``email`` (exact) and ``search`` (part of an e-mail or name)."""
    out = {}
    for name in ("email", "search"):
        value = query.get(name) or None
        if value is not None:
            out[name] = v.string({name: value}, name, max_len=320, single_line=True)
    return out


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


async def update_user(app: web.Application, caller: Caller, user_id: str, body: dict) -> dict:
    _check_access(caller, user_id)
    v.reject_unknown(body, PATCH_FIELDS)
    if not body:
        raise v.fail(f"nothing to update; send any of {', '.join(sorted(PATCH_FIELDS))}")
    _require_admin_for(body, caller)
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _name(body, required=True)
    if "email" in body:
        changes["email"] = v.email(body)
    if "push_token" in body:
        changes["push_token"] = _push_token(body)
    if "role" in body:
        changes["role"] = _role(body)
    if "is_active" in body:
        if not isinstance(body["is_active"], bool):
            raise v.fail("is_active must be true or false")
        changes["is_active"] = body["is_active"]
    preferences = _preferences(body, partial=True) if "preferences" in body else None
    if "preferences" in body and preferences is None:
        raise v.fail("preferences must be a JSON object")
    if "password" in body:
        password = _password(body, required=True)
        changes["password_hash"] = await _cpu(app, passwords.hash_password, password)
    try:
        user = await in_db(app, dao.update, user_id, changes, preferences=preferences)
    except dao.EmailTaken:
        raise ApiError("CONFLICT", "a user with this email already exists") from None
    if user is None:
        raise ApiError("NOT_FOUND", "user not found")
    await _cache_drop(app, user_id)
    log.info("user updated", extra={"user_id": user_id, "fields": sorted(body)})
    return user.public()


async def deactivate_user(app: web.Application, caller: Caller, user_id: str) -> dict:
    _check_access(caller, user_id)
    user = await in_db(app, dao.deactivate, user_id)
    if user is None:
        raise ApiError("NOT_FOUND", "user not found")
    await _cache_drop(app, user_id)
    log.info("user deactivated", extra={"user_id": user_id})
    return user.public()


async def login(app: web.Application, body: dict, *, address: str) -> dict:
    """A token for a right e-mail and password of an active user; ``address`` is the client's, for
    the brute-force limits (:mod:`web.common.login_limits`), judged before the password."""
    v.reject_unknown(body, {"email", "password"})
    email = v.string(body, "email", max_len=320).lower()
    password = v.string(body, "password", max_len=1024)
    limiter = LoginLimiter(redis=app[app_keys.redis_key], keys=app[app_keys.redis_keys_key])
    wait = await limiter.wait_s(email, address)
    if wait:
        log.warning("login refused: too many failures", extra={"client_address": address})
        raise refusal(wait)
    user = await in_db(app, dao.get_by_email, email)
    # Verify even when there is no such user, so the answer takes the same time either way.
    stored = user.password_hash if user is not None else await _cpu(app, passwords.dummy_hash)
    good = await _cpu(app, passwords.verify_password, password, stored)
    if user is None or not good or not user.is_active:
        await limiter.failed(email, address)
        raise ApiError("UNAUTHORIZED", BAD_LOGIN)
    await limiter.succeeded(email)
    settings = app[app_keys.settings_key]
    token = issue_token(settings, sub=str(user.id), role=user.role)
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.jwt_ttl_s}
