"""Sign-in and sign-out (README, "Operator console").

The e-mail and password are checked by the user service's login API, the same rule and the same
brute-force limits as every other login (the browser's address is relayed for them); the console
then reads the token's role and lets in an admin only. Every refusal (wrong password, unknown
account, inactive account, not an admin) reads the same, so the page is no password oracle.
"""

from __future__ import annotations

import math
import re

from aiohttp import web

from models.redis_keys import CONSOLE_SESSION_TTL_S
from web.common.app_keys import settings_key
from web.common.auth import decode_token
from web.common.envelope import ApiError
from web.common.login_limits import forwarded_for
from web.console import csrf
from web.console.app_keys import sessions_key
from web.console.pages import PREFIX, audit, cid, gateway, render, services, session
from web.console.services import ServiceError, Unavailable
from web.console.sessions import COOKIE, LOGIN_COOKIE, LOGIN_COOKIE_TTL_S, clear_cookie, set_cookie

REFUSED = "Sign-in refused: the e-mail or password is wrong, or the account is not an active admin."
REASONS = {
    "signed_out": "You are signed out.",
    "revoked": "Your session has ended: the account is no longer an active admin.",
}
_SAFE_NEXT = re.compile(r"^/admin/[A-Za-z0-9/_.~%?=&:-]*$")


def _next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if value and _SAFE_NEXT.match(value) and "//" not in value and "/../" not in value:
        return value
    return f"{PREFIX}/"


async def _form(request: web.Request, *, error: str | None = None, status: int = 200, email: str = "") -> web.Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or csrf.new_nonce()
    key = csrf.login_key(gateway(request)[settings_key])
    context = {
        "login_csrf": csrf.login_token(key, nonce),
        "error": error,
        "info": REASONS.get(request.query.get("reason", "")),
        "email": email,
        "next": _next(request.query.get("next") or (await request.post()).get("next")),
    }
    response = await render(request, "login.html", context, status=status)
    set_cookie(response, request, LOGIN_COOKIE, nonce, LOGIN_COOKIE_TTL_S)
    return response


async def login_page(request: web.Request) -> web.Response:
    if await request.app[sessions_key].load(request.cookies.get(COOKIE)) is not None:
        return web.Response(status=303, headers={"Location": _next(request.query.get("next"))})
    return await _form(request)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    key = csrf.login_key(gateway(request)[settings_key])
    if not csrf.login_token_valid(key, request.cookies.get(LOGIN_COOKIE), form.get(csrf.FIELD)):
        raise web.HTTPForbidden()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    if not email or not password:
        return await _form(request, error="Enter your e-mail and password.", status=400, email=email)
    try:
        token = await services(request).login(
            email, password, forwarded_for=forwarded_for(request), correlation_id=cid(request)
        )
        caller = decode_token(gateway(request)[settings_key], token["access_token"])
    except Unavailable as exc:
        return await _form(request, error=exc.message, status=503, email=email)
    except ServiceError as exc:
        if exc.code == "RATE_LIMITED":
            wait = (exc.data or {}).get("retry_after", 900)
            message = (
                "Too many failed sign-ins for this account or from this address. "
                f"Try again in {max(1, math.ceil(wait / 60))} minute(s)."
            )
            return await _form(request, error=message, status=429, email=email)
        return await _form(request, error=REFUSED, status=401, email=email)
    except (ApiError, KeyError, TypeError):
        return await _form(request, error=REFUSED, status=401, email=email)
    if caller.role != "admin":
        audit(request, "sign-in refused: not an admin", user_id=caller.sub)
        return await _form(request, error=REFUSED, status=401, email=email)
    try:
        profile = await services(request).user(caller.sub, cid(request), caller.sub)
    except ServiceError:
        profile = {"email": email, "name": ""}
    cookie, created = await request.app[sessions_key].create(
        admin_id=caller.sub, email=profile.get("email") or email, name=profile.get("name") or ""
    )
    audit(request, "signed in", admin_id=created.admin_id)
    response = web.Response(status=303, headers={"Location": _next(str(form.get("next", "")))})
    set_cookie(response, request, COOKIE, cookie, CONSOLE_SESSION_TTL_S)
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


async def logout(request: web.Request) -> web.Response:
    current = session(request)
    await request.app[sessions_key].destroy(current)
    audit(request, "signed out")
    response = web.Response(status=303, headers={"Location": f"{PREFIX}/login?reason=signed_out"})
    clear_cookie(response, request, COOKIE)
    return response
