"""Notifications: search and one notification's page with its timeline (README, "Operator console").

The rows come from the same DAO as ``GET /api/v1/notifications`` (:mod:`models.dao.notification_search`);
an e-mail in the search box is turned into a user id by the user service's API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from models.dao import notifications as dao
from models.dao.notification_search import search
from models.notification import CHANNELS, FAILED, OPEN_STATUSES, STATUSES, Notification
from web.common.auth import Caller
from web.common.envelope import ApiError
from web.console.pages import CONTROL_RE, PREFIX, admin, audit, db, gateway, pages, paging, redirect, render, services
from web.console.services import ServiceError, Unavailable
from web.gateway import cancelling

LIMIT = 25
MAX_SEARCH = 320


def notification_actions(row: Notification) -> list[dict[str, Any]]:
    """The buttons a notification's page offers, each ``{label, action}`` (a POST with the CSRF token):
    ``Cancel`` while it is not yet handed to the provider."""
    if row.status not in OPEN_STATUSES:
        return []
    return [{"label": "Cancel", "action": f"{PREFIX}/notifications/{quote(row.notification_id, safe='')}/cancel"}]


async def cancel(request: web.Request) -> web.Response:
    """The API's cancel (:func:`web.gateway.cancelling.cancel`), as the signed-in admin."""
    nid = request.match_info["notification_id"]
    admin_id, _ = admin(request)
    where = f"{PREFIX}/notifications/{quote(nid, safe='')}"
    try:
        await cancelling.cancel(gateway(request), Caller(sub=admin_id, role="admin"), nid)
    except ApiError as exc:
        return await redirect(request, where, notice=f"Not cancelled: {exc.message}.")
    audit(request, "notification cancelled", notification_id=nid)
    return await redirect(request, where, notice="Cancelled: it will not be sent.")


async def _user_of_email(request: web.Request, email: str) -> str | None:
    found, _ = await services(request).users(*admin(request), page=1, limit=1, email=email.lower())
    return found[0]["id"] if found else None


async def listing(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()
    status = request.query.get("status", "")
    channel = request.query.get("channel", "")
    page = paging(request)
    filters = {
        "status": status if status in STATUSES else None,
        "notification_type": channel if channel in CHANNELS else None,
    }
    problem = None
    total, rows = 0, []
    if len(q) > MAX_SEARCH or CONTROL_RE.search(q):
        problem = "That search text cannot match anything: use an id, a request id or an e-mail address."
    elif "@" in q:
        user_id = await _user_of_email(request, q)
        if user_id is None:
            problem = f"No user has the e-mail address {q}."
        else:
            total, rows = await db(request, search, user_id=user_id, page=page, limit=LIMIT, **filters)
    else:
        total, rows = await db(request, search, any_id=q or None, page=page, limit=LIMIT, **filters)
    context = {
        "q": q,
        "status": filters["status"] or "",
        "channel": filters["notification_type"] or "",
        "statuses": STATUSES,
        "channels": CHANNELS,
        "rows": rows,
        "problem": problem,
        "paging": pages(total, page, LIMIT),
    }
    return await render(request, "notifications.html", context)


async def detail(request: web.Request) -> web.Response:
    nid = request.match_info["notification_id"]
    row = await db(request, dao.get, nid) if len(nid) <= 64 and not CONTROL_RE.search(nid) else None
    if row is None:
        raise web.HTTPNotFound()
    user, user_problem = None, None
    try:
        user = await services(request).user(*admin(request), str(row.user_id))
    except Unavailable as exc:
        user_problem = exc.message
    except ServiceError:
        user_problem = "no such user any more"
    context = {
        "n": row,
        "user": user,
        "user_problem": user_problem,
        "actions": notification_actions(row),
        "may_be_dead_letter": row.status == FAILED,
    }
    return await render(request, "notification.html", context)
