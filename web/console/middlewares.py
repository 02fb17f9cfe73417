"""The console's two middlewares: pages for errors plus the security headers, and the session gate
(sign-in required, CSRF token on every POST, the admin re-checked every minute).

They run inside the gateway's own (correlation id, metrics, errors), which never see a console
error: it has already become an HTML page here.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from models.unavailable import UNAVAILABLE
from web.common.app_keys import correlation_id_key
from web.console import csrf
from web.console.app_keys import services_key, session_key, sessions_key
from web.console.pages import PREFIX
from web.console.services import ServiceError, Unavailable
from web.console.sessions import COOKIE

log = logging.getLogger(__name__)

#: Routes open without a session: the sign-in form and the stylesheet and script.
OPEN_ROUTES = {"login", "static"}
#: Seconds between checks that the signed-in admin is still an active admin.
RECHECK_S = 60
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; "
    # Inline styles only for the sandboxed preview of an e-mail (a srcdoc frame takes this policy).
    "style-src 'self' 'unsafe-inline'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
TITLES = {
    400: "That request could not be used",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    429: "Too many attempts",
    503: "A dependency is unavailable",
}
MESSAGES = {
    403: "The form was missing its security token or it has expired. Go back, reload the page and try again.",
    404: "There is nothing at this address.",
    503: "PostgreSQL, Redis, RabbitMQ or a Herald service did not answer. Try again shortly.",
}


def _error_page(request: web.Request, status: int, message: str | None = None) -> web.Response:
    context = {
        "title": TITLES.get(status, "Something went wrong"),
        "message": message or MESSAGES.get(status, "Quote the request id below when reporting this."),
        "status": status,
        "session": None,
        "correlation_id": request.get(correlation_id_key, ""),
        "nav": [],
        "current": "",
        "csrf": "",
        "notice": None,
    }
    response = aiohttp_jinja2.render_template("error.html", request, context, status=status)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


@web.middleware
async def pages_middleware(request: web.Request, handler):
    """Errors as HTML pages (never a stack trace), and the security headers on every answer."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error_page(request, exc.status)
    except Unavailable as exc:
        response = _error_page(request, 503, exc.message)
    except ServiceError as exc:
        response = _error_page(request, exc.status if exc.status in (400, 404, 409) else 400, exc.message)
    except UNAVAILABLE as exc:
        log.error("console: dependency unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
        response = _error_page(request, 503)
    except Exception:
        log.exception("console: unhandled error on %s %s", request.method, request.path)
        response = _error_page(request, 500)
    response.headers.update(SECURITY_HEADERS)
    return response


def _login_url(request: web.Request, reason: str | None = None) -> str:
    target = quote(request.path_qs, safe="/")
    return f"{PREFIX}/login?next={target}" + (f"&reason={reason}" if reason else "")


@web.middleware
async def session_middleware(request: web.Request, handler):
    """Only a signed-in admin gets past, and a POST only with the session's CSRF token."""
    if request.path == PREFIX:  # the sub-application is reached without its slash too
        return web.Response(status=308, headers={"Location": f"{PREFIX}/"})
    resource = request.match_info.route.resource
    if resource is not None and resource.name in OPEN_ROUTES:
        return await handler(request)
    store = request.app[sessions_key]
    current = await store.load(request.cookies.get(COOKIE))
    if request.method not in ("GET", "HEAD"):
        # Without a session there is no token a POST could match: refused the same way.
        if current is None or not csrf.session_token_valid(current, await csrf.submitted(request)):
            log.warning(
                "console: POST refused, CSRF token missing or wrong",
                extra={"path": request.path, "admin_id": current.admin_id if current else None},
            )
            raise web.HTTPForbidden()
    elif current is None:
        return web.Response(status=303, headers={"Location": _login_url(request)})
    if time.time() - current.checked > RECHECK_S and not await _still_admin(request, current):
        await store.destroy(current)
        return web.Response(status=303, headers={"Location": _login_url(request, "revoked")})
    request[session_key] = current
    return await handler(request)


async def _still_admin(request: web.Request, current) -> bool:
    """Whether the user service still has the session's admin as an active admin. When it cannot
    be asked, the session goes on (until its own end): the console must work through an outage."""
    try:
        user = await request.app[services_key].user(current.admin_id, request[correlation_id_key], current.admin_id)
    except Unavailable:
        log.warning("console: admin not re-checked, the user service is unavailable")
        return True
    except ServiceError:
        user = None
    if user is None or user.get("role") != "admin" or not user.get("is_active"):
        log.warning(
            "console: session ended, the account is no longer an active admin", extra={"admin_id": current.admin_id}
        )
        return False
    current.checked = time.time()
    await request.app[sessions_key].save(current)
    return True
