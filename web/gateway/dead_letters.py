"""Admin endpoints over ``failed.queue``: list the dead letters, replay one.

The work is blocking (pika, peewee, a confirmed publish) and must happen in one thread, because the
dead letter is held on a pika channel from the moment it is found until it is acked; so each
request runs as one unit in the database threads. The Redis mirror is written there too, with a
blocking client, before the publish: written afterwards it could overwrite the worker's
``delivered`` with a stale ``pending``.
"""

from __future__ import annotations

import peewee
import pika.exceptions
from aiohttp import web

from messaging import dead_letters
from models.notification import DELIVERED, PENDING
from web.common import app_keys
from web.common.api import Reply
from web.common.app import in_db
from web.common.auth import Caller
from web.common.envelope import ApiError, page_meta
from web.common.fields import PageQuery
from web.gateway.app_keys import publisher_key, status_writer_key
from web.gateway.publisher import PublishError
from web.gateway.schemas import NotificationPath

MESSAGES = {
    dead_letters.REPLAYED_OK: "replayed: back on its queue with a fresh retry budget",
    dead_letters.ALREADY_DELIVERED: "the notification was already delivered; the stale dead letter was removed",
}


async def _run(request: web.Request, fn, *args, **kwargs):
    try:
        return await in_db(request.app, fn, *args, atomic=False, **kwargs)
    except (peewee.PeeweeException, pika.exceptions.AMQPError, PublishError, OSError):
        raise ApiError(
            "SERVICE_UNAVAILABLE",
            "the broker or storage is unavailable; try again shortly",
            headers={"Retry-After": "5"},
        ) from None


async def list_dead_letters(request: web.Request, *, caller: Caller, query: PageQuery) -> Reply:
    page, limit = query.page, query.limit
    url = request.app[app_keys.settings_key].rabbitmq_url
    if url is None:  # make run's in-process broker has no failed.queue
        return Reply([], meta=page_meta(total=0, limit=limit, page=page))
    total, items = await _run(request, dead_letters.listing, url, page=page, limit=limit)
    return Reply(items, meta=page_meta(total=total, limit=limit, page=page))


async def replay_dead_letter(request: web.Request, *, caller: Caller, path: NotificationPath) -> Reply:
    nid = path.notification_id
    settings = request.app[app_keys.settings_key]
    if settings.rabbitmq_url is None:
        raise ApiError("NOT_FOUND", "no dead letter with that notification id")
    replayer = dead_letters.Replayer(
        publish=request.app[publisher_key].publish_blocking, mirror=request.app[status_writer_key].mirror
    )
    try:
        outcome = await _run(request, replayer.replay_one, settings.rabbitmq_url, nid)
    except dead_letters.ReplayError as exc:
        raise ApiError("CONFLICT", str(exc)) from None
    if outcome is None:
        raise ApiError("NOT_FOUND", "no dead letter with that notification id")
    status_now = DELIVERED if outcome == dead_letters.ALREADY_DELIVERED else PENDING
    return Reply({"notification_id": nid, "outcome": outcome, "status": status_now}, message=MESSAGES[outcome])
