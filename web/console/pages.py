"""What every console page shares: the navigation, rendering with the session's CSRF token and
notice, redirects after a form, the audit log line, and the gateway's resources."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import aiohttp_jinja2
import peewee
from aiohttp import web

from web.common.app import in_db
from web.common.app_keys import correlation_id_key
from web.console.app_keys import gateway_key, services_key, session_key, sessions_key
from web.console.services import Services, Unavailable
from web.console.sessions import Session

log = logging.getLogger(__name__)

#: A search or an id with a control character (NUL among them) cannot match anything stored.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
PREFIX = "/admin"
#: The navigation bar, in order.
NAV = [
    (f"{PREFIX}/", "Overview"),
    (f"{PREFIX}/notifications", "Notifications"),
    (f"{PREFIX}/dead-letters", "Dead letters"),
    (f"{PREFIX}/templates", "Templates"),
    (f"{PREFIX}/users", "Users"),
    (f"{PREFIX}/api-keys", "API keys"),
    (f"{PREFIX}/webhooks", "Webhooks"),
]


def gateway(request: web.Request) -> web.Application:
    return request.app[gateway_key]


def services(request: web.Request) -> Services:
    return request.app[services_key]


def session(request: web.Request) -> Session:
    return request[session_key]


def cid(request: web.Request) -> str:
    """The request's correlation id (set by the gateway's middleware, echoed in every page's footer)."""
    return request[correlation_id_key]


def admin(request: web.Request) -> tuple[str, str]:
    """(admin id, correlation id): what every call to a service carries."""
    return session(request).admin_id, cid(request)


def _current(request: web.Request) -> str:
    path = request.path
    for href, _ in reversed(NAV):
        if path == href or (href != f"{PREFIX}/" and path.startswith(href)):
            return href
    return ""


async def render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """The page, with the navigation, the CSRF token for its forms and the pending notice."""
    current = request.get(session_key)
    notice = None
    if current is not None and current.flash:
        notice, current.flash = current.flash, None
        await request.app[sessions_key].save(current)
    base = {
        "nav": NAV,
        "current": _current(request),
        "session": current,
        "csrf": current.csrf if current else "",
        "notice": notice,
        "correlation_id": request.get(correlation_id_key, ""),
        "now": dt.datetime.now(dt.UTC),
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def redirect(request: web.Request, location: str, *, notice: str | None = None) -> web.Response:
    """303 to ``location`` (a form's answer), with a notice for the page it leads to."""
    current = request.get(session_key)
    if notice and current is not None:
        current.flash = notice
        await request.app[sessions_key].save(current)
    return web.Response(status=303, headers={"Location": location})


def audit(request: web.Request, action: str, **fields: Any) -> None:
    """The log line of an action taken in the console: who, what, and the correlation id."""
    current = request.get(session_key)
    log.info(
        "console action: %s",
        action,
        extra={
            "action": action,
            "admin_id": current.admin_id if current else None,
            "correlation_id": request.get(correlation_id_key),
            **fields,
        },
    )


async def db(request: web.Request, fn, *args: Any, **kwargs: Any) -> Any:
    """``fn`` in the gateway's database threads; a storage outage becomes the 503 page."""
    try:
        return await in_db(gateway(request), fn, *args, **kwargs)
    except peewee.PeeweeException:
        raise Unavailable("storage") from None


def paging(request: web.Request) -> int:
    """The page number asked for (1 when absent or malformed: a page is not worth an error)."""
    try:
        return max(1, min(int(request.query.get("page", "1")), 10**6))
    except ValueError:
        return 1


def pages(total: int, page: int, limit: int) -> dict[str, Any]:
    last = max(1, -(-total // limit))
    return {"page": page, "last": last, "total": total, "has_prev": page > 1, "has_next": page < last}
