"""The template service's rules: Jinja2 syntax, the Redis cache, versioned writes and rendering (the
requests arrive checked against :mod:`web.templates.schemas`).

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
import uuid
from concurrent.futures import ThreadPoolExecutor

import peewee
import redis.exceptions
from aiohttp import web
from msgspec import UNSET

from models.dao import templates as dao
from models.redis_keys import TEMPLATE_TTL_S
from models.template import DEFAULT_LANGUAGE
from providers.rendering import Renderer, RenderError
from web.common.app import in_db
from web.common.app_keys import redis_key, redis_keys_key
from web.common.auth import Caller
from web.common.envelope import ApiError
from web.templates.schemas import (
    CHANGES,
    RenderRequest,
    TemplateCreate,
    TemplateListQuery,
    TemplateUpdate,
    VersionsQuery,
)

log = logging.getLogger(__name__)

renderer_key = web.AppKey("template_renderer", Renderer)
render_executor_key = web.AppKey("template_render_executor", ThreadPoolExecutor)


def _checked_syntax(app: web.Application, name: str, source: str | None) -> None:
    if source is None:
        return
    try:
        app[renderer_key].check_syntax(source)
    except RenderError as exc:
        raise ApiError("VALIDATION_ERROR", f"{name}: {exc}") from None


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


async def create(app: web.Application, caller: Caller, body: TemplateCreate) -> dict:
    _checked_syntax(app, "subject", body.subject)
    _checked_syntax(app, "content", body.content)
    fields = {name: getattr(body, name) for name in ("name", "description", "subject", "content")}
    try:
        template = await in_db(
            app, dao.create, code=body.code, language=body.language, created_by=creator_of(caller), **fields
        )
    except peewee.IntegrityError:
        template = None
    if template is None:
        raise ApiError("CONFLICT", f"template {body.code!r} already exists in language {body.language!r}")
    await _cache_drop(app, body.code, body.language)
    return template.public()


async def listing(app: web.Application, query: TemplateListQuery) -> tuple[list[dict], int]:
    code = None if query.code is UNSET else query.code
    language = None if query.language is UNSET else query.language
    total, rows = await in_db(app, dao.listing, code=code, language=language, page=query.page, limit=query.limit)
    return [t.public() for t in rows], total


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


async def update(app: web.Application, caller: Caller, code: str, body: TemplateUpdate) -> dict:
    changes = {name: getattr(body, name) for name in CHANGES if getattr(body, name) is not None}
    if body.description is not UNSET:
        changes["description"] = body.description
    if not changes:
        raise ApiError(
            "VALIDATION_ERROR", "nothing to update: give at least one of name, description, subject, content, is_active"
        )
    _checked_syntax(app, "subject", body.subject)
    _checked_syntax(app, "content", body.content)
    template = await in_db(app, dao.update, code, body.language, changes, creator_of(caller))
    if template is None:
        raise ApiError("NOT_FOUND", f"no template {code!r} in language {body.language!r}")
    await _cache_drop(app, code, body.language)
    return template.public()


async def versions(app: web.Application, code: str, query: VersionsQuery) -> tuple[list[dict], int]:
    language = DEFAULT_LANGUAGE if query.language is UNSET else query.language
    found = await in_db(app, dao.versions, code, language, page=query.page, limit=query.limit)
    if found is None:
        raise ApiError("NOT_FOUND", f"no template {code!r} in language {language!r}")
    total, rows = found
    return [r.public() for r in rows], total


async def render(app: web.Application, code: str, body: RenderRequest) -> dict:
    """Render in a worker thread: a heavy template must not stall every other request on the loop."""
    template = await get(app, code, body.language)
    job = functools.partial(
        app[renderer_key].render,
        subject=template.get("subject") or "",
        content=template["content"],
        variables=body.variables,
    )
    try:
        rendered = await asyncio.get_running_loop().run_in_executor(app[render_executor_key], job)
    except RenderError as exc:
        raise ApiError("VALIDATION_ERROR", str(exc)) from None
    except Exception as exc:
        # The template is user content: whatever else it trips over is its fault, not the
        # service's, and the exception's text may describe internals, so only its kind is shown.
        log.warning("template %s failed to render: %r", code, exc)
        raise ApiError("VALIDATION_ERROR", f"template failed to render ({type(exc).__name__})") from None
    return {
        "subject": rendered.subject,
        "body": rendered.html,
        "text": rendered.text,
        "language": template["language"],
        "version": template["version"],
    }
