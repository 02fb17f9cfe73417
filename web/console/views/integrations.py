"""API keys and webhooks: create (the key or secret shown once, on the creation's own answer),
list, revoke or delete, and a webhook's recent deliveries (README, "API keys" and "Webhooks").

The work is the API's: :mod:`web.gateway.api_key_service` and :mod:`web.gateway.webhook_service`
called on the gateway app with the signed-in admin as an admin caller, so their rules (names,
modes, expiry, the refused webhook addresses) hold here exactly as over HTTP.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from aiohttp import web

from models.notification import MODES
from models.webhook import EVENT_TYPES
from web.common.auth import Caller
from web.common.envelope import ApiError
from web.console.pages import PREFIX, admin, audit, gateway, pages, paging, redirect, render
from web.console.services import ServiceError
from web.gateway import api_key_service, webhook_service

LIMIT = 25
KEYS = f"{PREFIX}/api-keys"
HOOKS = f"{PREFIX}/webhooks"


def _caller(request: web.Request) -> Caller:
    """The signed-in admin, as the services know an admin signed in with a JWT."""
    admin_id, _ = admin(request)
    return Caller(sub=admin_id, role="admin")


async def _call(request: web.Request, fn, *args, **kwargs):
    """``fn(gateway app, admin caller, ...)``; a refusal becomes the console's error page."""
    try:
        return await fn(gateway(request), _caller(request), *args, **kwargs)
    except ApiError as exc:
        raise ServiceError(exc.status, exc.code, exc.message, exc.data) from None


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# API keys


async def keys_page(request: web.Request, *, form=None, error=None, created=None, status=200) -> web.Response:
    page = paging(request)
    items, meta = await _call(request, api_key_service.list_api_keys, page=page, limit=LIMIT)
    context = {
        "items": items,
        "paging": pages(meta.get("total", len(items)), page, LIMIT),
        "modes": MODES,
        "form": form or {"name": "", "mode": MODES[0], "expires": ""},
        "error": error,
        "created": created,
    }
    return await render(request, "api_keys.html", context, status=status)


async def keys_listing(request: web.Request) -> web.Response:
    return await keys_page(request)


def _expiry(text: str) -> dt.datetime | None:
    """The form's date (``YYYY-MM-DD``): the key expires at the start of that day, UTC."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError("VALIDATION_ERROR", "expires must be a date (YYYY-MM-DD)") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


async def key_create(request: web.Request) -> web.Response:
    form = await _form(request)
    fields = {k: form.get(k, "").strip() for k in ("name", "mode", "expires")}
    try:
        created = await api_key_service.create_api_key(
            gateway(request),
            _caller(request),
            name=fields["name"],
            mode=fields["mode"],
            expires_at=_expiry(fields["expires"]),
        )
    except ApiError as exc:
        if exc.code != "VALIDATION_ERROR":
            raise ServiceError(exc.status, exc.code, exc.message, exc.data) from None
        return await keys_page(request, form=fields, error=exc.message, status=400)
    audit(request, "api key created", api_key_id=created["id"], mode=created["mode"])
    # The key is in this answer only: not in a notice, not in any later page.
    return await keys_page(request, created=created)


async def key_revoke(request: web.Request) -> web.Response:
    key = await _call(request, api_key_service.revoke_api_key, request.match_info["key_id"])
    audit(request, "api key revoked", api_key_id=key["id"])
    return await redirect(request, KEYS, notice=f"The key {key['name']} ({key['prefix']}…) is revoked.")


# Webhooks


async def hooks_page(request: web.Request, *, form=None, error=None, created=None, status=200) -> web.Response:
    page = paging(request)
    items, meta = await _call(request, webhook_service.list_webhooks, page=page, limit=LIMIT)
    context = {
        "items": items,
        "paging": pages(meta.get("total", len(items)), page, LIMIT),
        "event_types": EVENT_TYPES,
        "form": form or {"url": "", "description": "", "events": []},
        "error": error,
        "created": created,
    }
    return await render(request, "webhooks.html", context, status=status)


async def hooks_listing(request: web.Request) -> web.Response:
    return await hooks_page(request)


async def hook_create(request: web.Request) -> web.Response:
    form = await request.post()
    fields = {
        "url": str(form.get("url", "")).strip(),
        "description": str(form.get("description", "")).strip(),
        "events": [str(e) for e in form.getall("events", [])],
    }
    try:
        created = await webhook_service.create_webhook(
            gateway(request),
            _caller(request),
            url=fields["url"],
            events=fields["events"] or None,
            description=fields["description"] or None,
        )
    except ApiError as exc:
        if exc.code != "VALIDATION_ERROR":
            raise ServiceError(exc.status, exc.code, exc.message, exc.data) from None
        return await hooks_page(request, form=fields, error=exc.message, status=400)
    audit(request, "webhook created", webhook_id=created["id"])
    # The signing secret is in this answer only.
    return await hooks_page(request, created=created)


async def hook_detail(request: web.Request) -> web.Response:
    wid = request.match_info["webhook_id"]
    hook = await _call(request, webhook_service.get_webhook, wid)
    page = paging(request)
    items, meta = await _call(request, webhook_service.list_deliveries, hook["id"], page=page, limit=LIMIT)
    context = {"w": hook, "items": items, "paging": pages(meta.get("total", len(items)), page, LIMIT)}
    return await render(request, "webhook.html", context)


async def hook_delete_confirm(request: web.Request) -> web.Response:
    hook = await _call(request, webhook_service.get_webhook, request.match_info["webhook_id"])
    return await render(request, "webhook_delete.html", {"w": hook})


async def hook_delete(request: web.Request) -> web.Response:
    wid = request.match_info["webhook_id"]
    form = await request.post()
    if form.get("confirm") != "yes":
        return await redirect(request, f"{HOOKS}/{quote(wid, safe='')}/delete")
    hook = await _call(request, webhook_service.delete_webhook, wid)
    audit(request, "webhook deleted", webhook_id=hook["id"])
    return await redirect(
        request, HOOKS, notice=f"The webhook to {hook['url']} is deleted; nothing more is sent to it."
    )
