"""Signing in to the console: active admins only, through the user service's login (its brute-force
limits included), a session cookie with the documented flags, a CSRF token on every form, and
sign-out ending the session for good."""

from __future__ import annotations

import json
import time

import pytest
import redis

from tests.support import resources
from tests.support.console import create_admin, csrf_of, page, post_form, sign_in
from web.console.middlewares import RECHECK_S
from web.console.routes import ROUTES
from web.console.views.auth import REFUSED


async def test_an_admin_signs_in_and_out(stack):
    admin = await create_admin(stack)
    client = stack.client
    resp = await sign_in(client, admin.email, admin.password)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/"
    cookie = resp.cookies["herald_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/admin"
    assert not cookie["secure"], "plain HTTP: no Secure flag"
    assert int(cookie["max-age"]) == 8 * 3600
    overview = await page(client, "/admin/")
    assert "<h1>Overview</h1>" in overview and admin.email in overview
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/admin/"))["herald_console"].value

    resp = await post_form(client, "/admin/logout")
    assert resp.status == 303 and resp.headers["Location"] == "/admin/login?reason=signed_out"
    assert resp.cookies["herald_console"]["max-age"] == "0"
    after = await client.get("/admin/", allow_redirects=False)
    assert after.status == 303 and after.headers["Location"].startswith("/admin/login")
    # a copy of the cookie taken before signing out opens nothing either: the session is gone
    replay = await client.get("/admin/", cookies={"herald_console": stolen}, allow_redirects=False)
    assert replay.status == 303


async def test_the_cookie_is_secure_behind_an_https_proxy(stack):
    admin = await create_admin(stack)
    form = await stack.client.get("/admin/login", headers={"X-Forwarded-Proto": "https"})
    assert form.cookies["herald_console_login"]["secure"]
    resp = await stack.client.post(
        "/admin/login",
        data={"email": admin.email, "password": admin.password, "csrf_token": csrf_of(await form.text())},
        headers={"X-Forwarded-Proto": "https"},
        # a Secure cookie is not sent back over plain HTTP: the proxy's side of the connection is HTTPS
        cookies={"herald_console_login": form.cookies["herald_console_login"].value},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.cookies["herald_console"]["secure"]


@pytest.mark.parametrize("who", ["user", "service-like", "inactive admin", "wrong password", "unknown"])
async def test_anyone_but_an_active_admin_is_refused_with_one_message_and_no_session(stack, who):
    admin = await create_admin(stack)
    email, password = admin.email, admin.password
    if who == "user":
        email = (await stack.create_user(password=password))["email"]
    elif who == "service-like":
        email = (await stack.create_user(password=password, role="service"))["email"]
    elif who == "inactive admin":
        resp = await stack.client.delete(f"/api/v1/users/{admin.id}", headers=stack.auth())
        assert resp.status == 200
    elif who == "wrong password":
        password = "not-the-password"
    else:
        email = "nobody@example.com"
    resp = await sign_in(stack.client, email, password)
    text = await resp.text()
    assert resp.status == 401, text[:500]
    assert REFUSED in text
    assert "herald_console" not in resp.cookies
    denied = await stack.client.get("/admin/", allow_redirects=False)
    assert denied.status == 303 and denied.headers["Location"].startswith("/admin/login")


async def test_the_sign_in_form_needs_its_csrf_token(stack):
    admin = await create_admin(stack)
    await stack.client.get("/admin/login")
    resp = await stack.client.post(
        "/admin/login", data={"email": admin.email, "password": admin.password}, allow_redirects=False
    )
    assert resp.status == 403
    forged = await stack.client.post(
        "/admin/login",
        data={"email": admin.email, "password": admin.password, "csrf_token": "0" * 64},
        allow_redirects=False,
    )
    assert forged.status == 403 and "herald_console" not in forged.cookies


async def test_repeated_failures_lock_the_account_with_a_clear_message(stack):
    admin = await create_admin(stack)
    for _ in range(5):
        assert (await sign_in(stack.client, admin.email, "wrong-password")).status == 401
    resp = await sign_in(stack.client, admin.email, admin.password)
    text = await resp.text()
    assert resp.status == 429
    assert "Too many failed sign-ins for this account or from this address. Try again in 15 minute(s)." in text
    assert "herald_console" not in resp.cookies


async def test_after_sign_in_the_browser_returns_to_the_page_it_asked_for_but_never_elsewhere(stack):
    admin = await create_admin(stack)
    asked = await stack.client.get("/admin/dead-letters?page=2", allow_redirects=False)
    assert asked.headers["Location"] == "/admin/login?next=/admin/dead-letters%3Fpage%3D2"
    resp = await sign_in(stack.client, admin.email, admin.password, next_path="/admin/dead-letters?page=2")
    assert resp.headers["Location"] == "/admin/dead-letters?page=2"
    await post_form(stack.client, "/admin/logout")
    for evil in ("//evil.example/admin/", "https://evil.example/", "/admin/../api/v1/users", "/adminx"):
        resp = await sign_in(stack.client, admin.email, admin.password, next_path=evil)
        assert resp.headers["Location"] == "/admin/", evil
        await post_form(stack.client, "/admin/logout")


POSTS = [
    path.replace("{notification_id}", "n-1").replace("{code}", "welcome").replace("{user_id}", "u-1")
    for method, path, _, name in ROUTES
    if method == "POST" and name != "login"
]


async def test_every_post_without_a_valid_csrf_token_is_403(stack):
    admin = await create_admin(stack)
    await sign_in(stack.client, admin.email, admin.password)
    assert len(POSTS) >= 8
    for path in POSTS:
        for data in ({}, {"csrf_token": "forged"}):
            resp = await stack.client.post("/admin" + path, data=data, allow_redirects=False)
            assert resp.status == 403, (path, data, resp.status)
            assert "security token" in await resp.text()
        header = await stack.client.post("/admin" + path, headers={"X-CSRF-Token": "forged"}, allow_redirects=False)
        assert header.status == 403, path
    assert (await stack.client.get("/admin/", allow_redirects=False)).status == 200, "still signed in"


async def test_a_session_ends_when_its_admin_is_deactivated(stack):
    admin = await create_admin(stack)
    await sign_in(stack.client, admin.email, admin.password)
    assert (await stack.client.get("/admin/", allow_redirects=False)).status == 200
    resp = await stack.client.delete(f"/api/v1/users/{admin.id}", headers=stack.auth())
    assert resp.status == 200
    # the console re-checks its admin once a minute: move this session's last check back by that much
    client = redis.Redis.from_url(resources.REDIS_URL, decode_responses=True)
    [key] = client.keys(stack.settings.redis_key_prefix + "console_session:*")
    session = json.loads(client.get(key))
    client.set(key, json.dumps({**session, "checked": time.time() - RECHECK_S - 1}), keepttl=True)
    resp = await stack.client.get("/admin/", allow_redirects=False)
    assert resp.status == 303 and "reason=revoked" in resp.headers["Location"]
    assert client.get(key) is None
    client.close()


async def test_pages_need_a_session(stack):
    for path in ("/admin/", "/admin/notifications", "/admin/dead-letters", "/admin/templates", "/admin/users"):
        resp = await stack.client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/admin/login?next="), path
    assert (await stack.client.get("/admin/static/console.css")).status == 200
    login = await page(stack.client, "/admin/login")
    assert '<label for="email">Email</label>' in login and '<label for="password">Password</label>' in login
    assert ">Sign in</button>" in login
    bare = await stack.client.get("/admin", allow_redirects=False)
    assert bare.status == 308 and bare.headers["Location"] == "/admin/"
