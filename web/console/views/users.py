"""Users: search by e-mail or name, a user's page, deactivate; all through the user service's API
(``GET /api/v1/users/?search=``, ``GET`` and ``DELETE /api/v1/users/{id}``)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from web.console.pages import CONTROL_RE, PREFIX, admin, audit, pages, paging, redirect, render, services

LIMIT = 25
#: How much of a push token the console shows: its end, enough to tell two apart.
TOKEN_TAIL = 6


def mask_token(token: str | None) -> str | None:
    """A push token as the console shows it: only its last six characters."""
    if not token:
        return None
    return "•" * 6 + token[-TOKEN_TAIL:]


async def listing(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()
    page = paging(request)
    problem, items, total = None, [], 0
    if len(q) > 320 or CONTROL_RE.search(q):
        problem = "Search by part of an e-mail address or a name."
    else:
        items, meta = await services(request).users(*admin(request), page=page, limit=LIMIT, search=q)
        total = (meta or {}).get("total", len(items))
    for item in items:
        item["push_token"] = mask_token(item.get("push_token"))
    context = {"q": q, "items": items, "problem": problem, "paging": pages(total, page, LIMIT)}
    return await render(request, "users.html", context)


async def detail(request: web.Request) -> web.Response:
    user = await services(request).user(*admin(request), request.match_info["user_id"])
    user["push_token"] = mask_token(user.get("push_token"))
    return await render(request, "user.html", {"u": user})


async def deactivate(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"]
    user = await services(request).deactivate(*admin(request), user_id)
    audit(request, "user deactivated", user_id=user["id"])
    return await redirect(
        request, f"{PREFIX}/users/{quote(user['id'], safe='')}", notice=f"{user['email']} is deactivated."
    )
