"""Cancelling a notification not yet handed to the provider (README, "Scheduling, expiry,
cancelling").

A cancel and a worker about to send race for the same send claim (``sending:<id>``, the one
:class:`middleware.delivery_guard.DeliveryGuard` takes): whoever holds it decides. A cancel that
finds the claim taken answers 409 (the notification is being handed to the provider now); a worker
that finds it taken waits and then sees ``cancelled``. Either way exactly one outcome is recorded,
and it is the true one. The status moves only from ``scheduled`` or ``pending``, judged by the
database on the row as it is.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from models.dao import notifications as dao
from models.notification import CANCELLED, OPEN_STATUSES, Notification
from web.common import app_keys
from web.common.app import in_db
from web.common.auth import Caller
from web.common.envelope import ApiError
from web.gateway.app_keys import status_writer_key

#: How long a cancel may hold the send claim: a database write and a Redis mirror, bounded.
CANCEL_CLAIM_MS = 10_000


async def cancel(app: web.Application, caller: Caller, notification_id: str) -> Notification:
    """The notification, now ``cancelled``; 404 if the caller may not read it, 409 if it is past
    cancelling or being sent at this moment."""
    row = await in_db(app, dao.get, notification_id)
    if row is None or not caller.may_act_on(str(row.user_id)):
        raise ApiError("NOT_FOUND", "notification not found")
    if row.status not in OPEN_STATUSES:
        raise ApiError("CONFLICT", f"the notification is already {row.status}; it cannot be cancelled")
    redis, claim, holder = (
        app[app_keys.redis_key],
        app[app_keys.redis_keys_key].sending(notification_id),
        uuid.uuid4().hex,
    )
    if not await redis.set(claim, holder, nx=True, px=CANCEL_CLAIM_MS):
        raise ApiError("CONFLICT", "the notification is being handed to the provider now; it cannot be cancelled")
    try:
        done = await in_db(
            app,
            app[status_writer_key].record,
            notification_id,
            outcome=CANCELLED,
            status=CANCELLED,
            error=f"cancelled by {caller.sub}",
            only_from=OPEN_STATUSES,
            atomic=False,
        )
    finally:
        # Ours unless it outlived CANCEL_CLAIM_MS; no Lua, so ``make run``'s in-process Redis serves too.
        if await redis.get(claim) == holder:
            await redis.delete(claim)
    if done is None:
        now = await in_db(app, dao.get, notification_id)
        raise ApiError(
            "CONFLICT", f"the notification is already {now.status if now else 'gone'}; it cannot be cancelled"
        )
    return done
