"""The template service's rules: request checks, the Redis cache, versioned writes and rendering.

Handlers stay thin; everything here takes the application so it reaches the database (through
``in_db``, never on the loop), Redis, the shared :class:`Renderer` and its thread pool.

The cache holds ``Template.public()`` of one exact language as a JSON string under
``template:<code>:<language>``; the gateway and the workers read the same key, so its value must
not drift from that shape.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import peewee
import redis.exceptions
from aiohttp import web

from models.dao import templates as dao
from models.redis_keys import TEMPLATE_TTL_S
from models.template import DEFAULT_LANGUAGE, LANGUAGE_RE
from providers.rendering import Renderer, RenderError
from web.common import validation as v
from web.common.app import in_db
from web.common.app_keys import redis_key, redis_keys_key
from web.common.auth import Caller
from web.common.envelope import ApiError

log = logging.getLogger(__name__)

renderer_key = web.AppKey("template_renderer", Renderer)
render_executor_key = web.AppKey("template_render_executor", ThreadPoolExecutor)

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
MAX_CONTENT = 100_000
#: RFC 5322's line limit: a longer subject could not be sent as one header line.
MAX_SUBJECT = 998
MAX_NAME = 200
MAX_DESCRIPTION = 2000

CREATE_FIELDS = {"code", "name", "description", "subject", "content", "language"}
UPDATE_FIELDS = {"name", "description", "subject", "content", "language", "is_active"}
RENDER_FIELDS = {"variables", "language"}


# --- request checks -------------------------------------------------------------------------


def language_of(value: Any, name: str = "language") -> str:
    if value is None or value == "":
        return DEFAULT_LANGUAGE
    if not isinstance(value, str) or not LANGUAGE_RE.match(value):
        raise v.fail(f"{name} must be a language tag such as 'en' or 'pt-BR'")
    return value


def code_of(value: str) -> str:
    """A code from the path; one that could never have been created is simply not found."""
    if not CODE_RE.match(value):
        raise ApiError("NOT_FOUND", "no such template")
    return value


def _checked_syntax(app: web.Application, name: str, source: str) -> None:
    try:
        app[renderer_key].check_syntax(source)
    except RenderError as exc:
        raise v.fail(f"{name}: {exc}") from None


def _text_fields(app: web.Application, body: dict, *, creating: bool) -> dict[str, Any]:
    """The fields shared by create and update, checked; absent optional ones are left out."""
    out: dict[str, Any] = {}
    name = v.string(body, "name", required=creating, max_len=MAX_NAME, single_line=True)
    if name is not None:
        out["name"] = name
    if "description" in body:
        out["description"] = v.string(body, "description", required=False, min_len=0, max_len=MAX_DESCRIPTION)
    subject = v.string(body, "subject", required=False, min_len=0, max_len=MAX_SUBJECT, single_line=True)
    if subject is not None:
        _checked_syntax(app, "subject", subject)
        out["subject"] = subject
    content = v.string(body, "content", required=creating, max_len=MAX_CONTENT)
    if content is not None:
        _checked_syntax(app, "content", content)
        out["content"] = content
    return out


def creator_of(caller: Caller) -> str | None:
    """The history's ``created_by`` is a user id; a service token's free-form ``sub`` is not one."""
    try:
        return str(uuid.UUID(caller.sub))
    except ValueError:
        return None


# --- cache ----------------------------------------------------------------------------------
# Redis is a speed-up here, not the record: when it is unreachable reads go to the database and
# the failure is logged rather than turned into an error for a request that can still be served.


async def _cache_get(app: web.Application, code: str, language: str) -> dict | None:
    try:
        raw = await app[redis_key].get(app[redis_keys_key].template(code, language))
    except (redis.exceptions.RedisError, OSError) as exc:
        log.warning("template cache read failed: %s", exc)
        return None
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("language") == language else None


async def _cache_put(app: web.Application, template: dict) -> None:
    key = app[redis_keys_key].template(template["code"], template["language"])
    try:
        await app[redis_key].set(key, json.dumps(template, separators=(",", ":")), ex=TEMPLATE_TTL_S)
    except (redis.exceptions.RedisError, OSError) as exc:
        log.warning("template cache write failed: %s", exc)


async def _cache_drop(app: web.Application, code: str, language: str) -> None:
    try:
        await app[redis_key].delete(app[redis_keys_key].template(code, language))
    except (redis.exceptions.RedisError, OSError) as exc:
        log.error(
            "template cache invalidation failed for %s:%s; it may stay stale until its TTL: %s", code, language, exc
        )


# --- operations -----------------------------------------------------------------------------


async def create(app: web.Application, caller: Caller, body: dict) -> dict:
    v.reject_unknown(body, CREATE_FIELDS)
    code = v.string(body, "code", max_len=100)
    if not CODE_RE.match(code):
        raise v.fail("code must start with a lower-case letter or digit and use only a-z, 0-9, _ . -")
    language = language_of(body.get("language"))
    fields = _text_fields(app, body, creating=True)
    fields.setdefault("subject", "")
    fields.setdefault("description", None)
    try:
        template = await in_db(app, dao.create, code=code, language=language, created_by=creator_of(caller), **fields)
    except peewee.IntegrityError:
        template = None
    if template is None:
        raise ApiError("CONFLICT", f"template {code!r} already exists in language {language!r}")
    await _cache_drop(app, code, language)
    return template.public()


async def listing(app: web.Application, request: web.Request) -> tuple[list[dict], int, int, int]:
    page, limit = v.paging(request)
    language = request.query.get("language") or None
    if language is not None:
        language_of(language)
    code = request.query.get("code") or None
    if code is not None and not CODE_RE.match(code):
        raise v.fail("code is not a valid template code")  # and NUL must never reach PostgreSQL
    total, rows = await in_db(app, dao.listing, code=code, language=language, page=page, limit=limit)
    return [t.public() for t in rows], total, page, limit


async def get(app: web.Application, code: str, language: str) -> dict:
    """The template in ``language`` or, failing that, in English; 404 when neither exists."""
    cached = await _cache_get(app, code, language)
    if cached is not None:
        return cached
    template = await in_db(app, dao.get_with_fallback, code, language)
    if template is None:
        raise ApiError("NOT_FOUND", f"no template {code!r} in {language!r} or {DEFAULT_LANGUAGE!r}")
    public = template.public()
    await _cache_put(app, public)
    return public


async def update(app: web.Application, caller: Caller, code: str, body: dict) -> dict:
    v.reject_unknown(body, UPDATE_FIELDS)
    language = language_of(body.get("language"))
    changes = _text_fields(app, body, creating=False)
    is_active = v.boolean(body, "is_active")
    if is_active is not None:
        changes["is_active"] = is_active
    if not changes:
        raise v.fail("nothing to update: give at least one of name, description, subject, content, is_active")
    template = await in_db(app, dao.update, code, language, changes, creator_of(caller))
    if template is None:
        raise ApiError("NOT_FOUND", f"no template {code!r} in language {language!r}")
    await _cache_drop(app, code, language)
    return template.public()


async def versions(app: web.Application, request: web.Request, code: str) -> tuple[list[dict], int, int, int]:
    page, limit = v.paging(request)
    language = language_of(request.query.get("language"))
    found = await in_db(app, dao.versions, code, language, page=page, limit=limit)
    if found is None:
        raise ApiError("NOT_FOUND", f"no template {code!r} in language {language!r}")
    total, rows = found
    return [r.public() for r in rows], total, page, limit


async def render(app: web.Application, code: str, body: dict) -> dict:
    """Render in a worker thread: a heavy template must not stall every other request on the loop."""
    v.reject_unknown(body, RENDER_FIELDS)
    variables = v.obj(body, "variables", default={})
    template = await get(app, code, language_of(body.get("language")))
    job = functools.partial(
        app[renderer_key].render,
        subject=template.get("subject") or "",
        content=template["content"],
        variables=variables,
    )
    try:
        rendered = await asyncio.get_running_loop().run_in_executor(app[render_executor_key], job)
    except RenderError as exc:
        raise v.fail(str(exc)) from None
    except Exception as exc:
        # The template is user content: whatever else it trips over is its fault, not the
        # service's, and the exception's text may describe internals, so only its kind is shown.
        log.warning("template %s failed to render: %r", code, exc)
        raise v.fail(f"template failed to render ({type(exc).__name__})") from None
    return {
        "subject": rendered.subject,
        "body": rendered.html,
        "text": rendered.text,
        "language": template["language"],
        "version": template["version"],
    }
