"""Gateway handlers: the checked request in, the pipeline or a query called, the answer out."""

from __future__ import annotations

import peewee
from aiohttp import web
from msgspec import UNSET

from models.dao import notification_search
from models.dao import notifications as dao
from web.common.api import Reply
from web.common.app import in_db
from web.common.app_keys import correlation_id_key
from web.common.auth import Caller
from web.common.envelope import ApiError, page_meta
from web.gateway import cancelling
from web.gateway.app_keys import pipeline_key
from web.gateway.schemas import ChannelPath, NotificationPath, NotificationQuery, Receipt, SendRequest

REPLAYED = {"Idempotent-Replayed": "true"}


async def send_notification(request: web.Request, *, caller: Caller, body: SendRequest) -> Reply:
    accepted = await request.app[pipeline_key].send(caller, body, correlation_id=request[correlation_id_key])
    if accepted.replayed:
        return Reply(accepted.data, status=200, message="already accepted (idempotent replay)", headers=REPLAYED)
    return Reply(accepted.data)


async def cancel_notification(request: web.Request, *, caller: Caller, path: NotificationPath) -> Reply:
    row = await cancelling.cancel(request.app, caller, path.notification_id)
    return Reply(row.public(), message="notification cancelled")


async def get_notification(request: web.Request, *, caller: Caller, path: NotificationPath) -> dict:
    row = await _db(request, dao.get, path.notification_id)
    if row is None or not caller.may_act_on(str(row.user_id)):
        raise ApiError("NOT_FOUND", "notification not found")
    return row.public()


async def list_notifications(request: web.Request, *, caller: Caller, query: NotificationQuery) -> Reply:
    user_id = None if query.user_id is UNSET else str(query.user_id)
    if not caller.privileged:
        if user_id not in (None, caller.sub):
            raise ApiError("FORBIDDEN", "a user token may only list its own notifications")
        user_id = caller.sub
    total, rows = await _db(
        request,
        notification_search.listing,
        user_id=user_id,
        status=None if query.status is UNSET else query.status,
        notification_type=None if query.notification_type is UNSET else query.notification_type,
        page=query.page,
        limit=query.limit,
    )
    return Reply([row.public() for row in rows], meta=page_meta(total=total, limit=query.limit, page=query.page))


async def provider_receipt(request: web.Request, *, caller: Caller, path: ChannelPath, body: Receipt) -> dict:
    """A provider's receipt (delivery report, bounce) for one notification of this channel."""
    row = await _db(request, dao.get, body.notification_id)
    if row is None or row.notification_type != path.channel:
        raise ApiError("NOT_FOUND", f"no {path.channel} notification with that id")
    row = await _db(
        request, dao.set_status, body.notification_id, status=body.status, error=body.error, at=body.timestamp
    )
    await request.app[pipeline_key].mirror_status(row)
    return row.public()


async def _db(request: web.Request, fn, *args, **kwargs):
    try:
        return await in_db(request.app, fn, *args, **kwargs)
    except peewee.PeeweeException:
        raise ApiError(
            "SERVICE_UNAVAILABLE", "storage unavailable; try again shortly", headers={"Retry-After": "5"}
        ) from None
