"""Managing webhook subscriptions and reading their deliveries: what the ``/api/v1/webhooks``
endpoints do (README, "Webhooks").

Every function checks its caller first (an admin signed in with a JWT; never an API key) and
answers in the API's shapes: the webhook object, plus ``secret`` in the creation answer only. A
URL is checked when the subscription is made (scheme, and every address its host resolves to),
and again before every send. Routes are declared elsewhere; these are plain functions of the app.
"""

from __future__ import annotations

import asyncio
import functools
import uuid

from aiohttp import web

from models.dao import webhook_deliveries as deliveries
from models.dao import webhooks as dao
from models.webhook import DESCRIPTION_MAX, EVENT_TYPES, URL_MAX
from providers.webhook_address import UrlRefused, resolve
from web.common import app_keys
from web.common.app import in_db
from web.common.auth import Caller, require_key_manager
from web.common.envelope import ApiError, page_meta


def _fail(message: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", message)


def _events(events: list[str] | None) -> list[str] | None:
    """The event types asked for, in order, without repeats; ``None`` (all) when not given."""
    if events is None:
        return None
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise _fail(f"events must be a non-empty list of event types: {', '.join(EVENT_TYPES)}")
    unknown = sorted({e for e in events if e not in EVENT_TYPES})
    if unknown:
        raise _fail(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(events))


def _webhook_id(webhook_id: str) -> str:
    try:
        return str(uuid.UUID(str(webhook_id)))
    except ValueError:
        raise ApiError("NOT_FOUND", "webhook not found") from None


async def check_url(app: web.Application, url: str) -> None:
    """400 ``VALIDATION_ERROR`` saying why, unless ``url`` may receive webhooks now."""
    if not isinstance(url, str) or not 1 <= len(url) <= URL_MAX:
        raise _fail(f"url must be 1 to {URL_MAX} characters long")
    allow_private = app[app_keys.settings_key].webhook_allow_private
    check = functools.partial(resolve, url, allow_private=allow_private)
    try:
        await asyncio.get_running_loop().run_in_executor(None, check)
    except UrlRefused as exc:
        raise _fail(str(exc)) from None


async def create_webhook(
    app: web.Application, caller: Caller, *, url: str, events: list[str] | None = None, description: str | None = None
) -> dict:
    """201's data: the webhook object plus ``secret``, the only time the secret is ever shown.

    Raises:
        ApiError: FORBIDDEN (not an admin JWT); VALIDATION_ERROR (a URL that is not http(s), or
            whose host does not resolve or resolves to an address Herald does not call; unknown
            event types; a description over the limit).
    """
    require_key_manager(caller)
    wanted = _events(events)
    if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_MAX):
        raise _fail(f"description must be a string of at most {DESCRIPTION_MAX} characters")
    await check_url(app, url)
    row = await in_db(app, dao.create, url=url, events=wanted, description=description, created_by=caller.sub)
    return {**row.public(), "secret": row.secret}


async def list_webhooks(app: web.Application, caller: Caller, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """(items, meta): one page of webhook objects, newest first; never a secret."""
    require_key_manager(caller)
    total, rows = await in_db(app, dao.listing, page=page, limit=limit)
    return [row.public() for row in rows], page_meta(total=total, limit=limit, page=page)


async def get_webhook(app: web.Application, caller: Caller, webhook_id: str) -> dict:
    """The webhook object (never the secret). Raises ApiError FORBIDDEN, NOT_FOUND."""
    require_key_manager(caller)
    row = await in_db(app, dao.get, _webhook_id(webhook_id))
    if row is None:
        raise ApiError("NOT_FOUND", "webhook not found")
    return row.public()


async def delete_webhook(app: web.Application, caller: Caller, webhook_id: str) -> dict:
    """The deleted webhook's object. Its deliveries go with it: a message still queued for one
    finds no row and is dropped, so nothing more is sent. Raises ApiError FORBIDDEN, NOT_FOUND."""
    require_key_manager(caller)
    wid = _webhook_id(webhook_id)

    def remove():
        row = dao.get(wid)
        if row is not None:
            dao.delete(wid)
        return row

    row = await in_db(app, remove)
    if row is None:
        raise ApiError("NOT_FOUND", "webhook not found")
    return row.public()


async def list_deliveries(
    app: web.Application, caller: Caller, webhook_id: str, *, page: int, limit: int
) -> tuple[list[dict], dict]:
    """(items, meta): one page of the webhook's deliveries, newest first, each ``{event_id,
    event_type, notification_id, attempts, last_status_code, last_error, state, created_at,
    updated_at}``. Raises ApiError FORBIDDEN, NOT_FOUND (no such webhook)."""
    require_key_manager(caller)
    wid = _webhook_id(webhook_id)

    def read():
        if dao.get(wid) is None:
            return None
        return deliveries.listing(wid, page=page, limit=limit)

    found = await in_db(app, read)
    if found is None:
        raise ApiError("NOT_FOUND", "webhook not found")
    total, rows = found
    return [row.public() for row in rows], page_meta(total=total, limit=limit, page=page)
