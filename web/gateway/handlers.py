"""Gateway handlers: parse, call the pipeline or a query, answer in the envelope."""

from __future__ import annotations

import datetime as dt

import peewee
from aiohttp import web

from models.dao import notifications as dao
from models.notification import CHANNELS, DELIVERED, FAILED, STATUSES
from web.common import app_keys, validation
from web.common.app import in_db
from web.common.app_keys import correlation_id_key
from web.common.auth import caller_of, require_privileged
from web.common.envelope import ApiError, ok, page_meta
from web.gateway.app_keys import pipeline_key


def _caller(request: web.Request):
    return caller_of(request, request.app[app_keys.settings_key])


async def send_notification(request: web.Request) -> web.Response:
    caller = _caller(request)
    body = await validation.json_body(request)
    accepted = await request.app[pipeline_key].send(caller, body, correlation_id=request[correlation_id_key])
    if accepted.replayed:
        return ok(
            accepted.data, message="already accepted (idempotent replay)", headers={"Idempotent-Replayed": "true"}
        )
    return ok(accepted.data, message="notification accepted", status=202)


async def get_notification(request: web.Request) -> web.Response:
    caller = _caller(request)
    nid = request.match_info["notification_id"]
    if len(nid) > 64 or "\x00" in nid:
        raise ApiError("NOT_FOUND", "notification not found")
    row = await _db(request, dao.get, nid)
    if row is None or not caller.may_act_on(str(row.user_id)):
        raise ApiError("NOT_FOUND", "notification not found")
    return ok(row.public())


async def list_notifications(request: web.Request) -> web.Response:
    caller = _caller(request)
    page, limit = validation.paging(request)
    user_id = request.query.get("user_id") or None
    if user_id is not None:
        user_id = validation.uuid_str(user_id, "user_id")
    if not caller.privileged:
        if user_id not in (None, caller.sub):
            raise ApiError("FORBIDDEN", "a user token may only list its own notifications")
        user_id = caller.sub
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise validation.fail(f"status must be one of {', '.join(STATUSES)}")
    channel = request.query.get("notification_type") or None
    if channel is not None and channel not in CHANNELS:
        raise validation.fail("notification_type must be 'email' or 'push'")
    total, rows = await _db(
        request, dao.listing, user_id=user_id, status=status, notification_type=channel, page=page, limit=limit
    )
    return ok([row.public() for row in rows], meta=page_meta(total=total, limit=limit, page=page))


async def provider_receipt(request: web.Request) -> web.Response:
    """A provider's receipt (delivery report, bounce) for one notification of this channel."""
    caller = _caller(request)
    require_privileged(caller)
    channel = request.match_info["channel"]
    body = await validation.json_body(request)
    validation.reject_unknown(body, {"notification_id", "status", "timestamp", "error"})
    nid = validation.string(body, "notification_id", max_len=64, single_line=True)
    status = validation.string(body, "status", max_len=16)
    if status not in (DELIVERED, FAILED):
        raise validation.fail("status must be 'delivered' or 'failed'")
    error = validation.string(body, "error", required=False, max_len=2000)
    at = _timestamp(body.get("timestamp"))
    row = await _db(request, dao.get, nid)
    if row is None or row.notification_type != channel:
        raise ApiError("NOT_FOUND", f"no {channel} notification with that id")
    row = await _db(request, dao.set_status, nid, status=status, error=error, at=at)
    await request.app[pipeline_key].mirror_status(row)
    return ok(row.public(), message="receipt recorded")


def _timestamp(raw) -> dt.datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise validation.fail("timestamp must be an ISO 8601 string")
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise validation.fail("timestamp must be an ISO 8601 date and time") from None
    return value


async def _db(request: web.Request, fn, *args, **kwargs):
    try:
        return await in_db(request.app, fn, *args, **kwargs)
    except peewee.PeeweeException:
        raise ApiError(
            "SERVICE_UNAVAILABLE", "storage unavailable; try again shortly", headers={"Retry-After": "5"}
        ) from None


__all__ = ["CHANNELS", "get_notification", "list_notifications", "provider_receipt", "send_notification"]
