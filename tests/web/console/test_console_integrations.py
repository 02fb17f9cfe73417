"""The console's API-key and webhook pages: the same services as the API, the key or secret shown
once on the creation's own page, revocation refused by the API within 5 s, the webhook addresses
Herald does not call refused, and every action logged with the admin's id."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
import uuid

import pytest

from models.dao import webhook_deliveries
from models.webhook import FAILED
from tests.support.console import create_admin, page, post_form, sign_in
from web.common.app import in_db

KEY_RE = re.compile(r'id="new-key" class="mono" type="text" value="([^"]+)"')
SECRET_RE = re.compile(r'id="new-secret" class="mono" type="text" value="([^"]+)"')
HOOK_ID_RE = re.compile(r'href="/admin/webhooks/([0-9a-f-]{36})"')


@pytest.fixture
async def admin(stack):
    admin = await create_admin(stack)
    assert (await sign_in(stack.client, admin.email, admin.password)).status == 303
    return admin


async def test_a_key_is_created_shown_once_listed_and_revoked(stack, admin, caplog):
    caplog.set_level(logging.INFO, logger="web.console.pages")
    listing = await page(stack.client, "/admin/api-keys")
    for label in ("Name", "Mode", "Expires (UTC, optional)"):
        assert f">{label}</label>" in listing
    resp = await post_form(
        stack.client,
        "/admin/api-keys",
        {"name": "billing app", "mode": "live", "expires": ""},
        from_page="/admin/api-keys",
    )
    text = await resp.text()
    assert resp.status == 200, text[:2000]
    key = html.unescape(KEY_RE.search(text).group(1))
    assert key.startswith("hk_live_") and "shown this once" in text
    # the key works against the API
    api = await stack.client.get("/api/v1/notifications/", headers={"Authorization": f"Bearer {key}"})
    assert api.status == 200, await api.text()
    # the list shows the key's facts, never the key
    listing = await page(stack.client, "/admin/api-keys")
    assert key not in listing and key[12:] not in listing and "billing app" in listing
    [key_id] = re.findall(r'data-api-key="([^"]+)"', listing)
    assert ">Revoke<" in listing
    [created] = [r for r in caplog.records if getattr(r, "action", "") == "api key created"]
    assert created.admin_id == admin.id and created.api_key_id == key_id and created.correlation_id

    resp = await post_form(stack.client, f"/admin/api-keys/{key_id}/revoke", from_page="/admin/api-keys")
    assert resp.status == 303 and resp.headers["Location"] == "/admin/api-keys"
    after = await page(stack.client, "/admin/api-keys")
    assert "is revoked." in after and key not in after and ">Revoke<" not in after
    [revoked] = [r for r in caplog.records if getattr(r, "action", "") == "api key revoked"]
    assert revoked.admin_id == admin.id and revoked.api_key_id == key_id
    deadline = time.monotonic() + 5
    while True:
        api = await stack.client.get("/api/v1/notifications/", headers={"Authorization": f"Bearer {key}"})
        if api.status == 401 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    assert api.status == 401


async def test_a_key_the_service_refuses_keeps_the_form_and_says_why(stack, admin):
    resp = await post_form(
        stack.client,
        "/admin/api-keys",
        {"name": "old", "mode": "live", "expires": "2001-01-01"},
        from_page="/admin/api-keys",
    )
    text = await resp.text()
    assert resp.status == 400 and "expires_at must be in the future" in text
    assert 'value="old"' in text and 'id="new-key"' not in text
    resp = await post_form(stack.client, "/admin/api-keys", {"name": "x", "mode": "prod"}, from_page="/admin/api-keys")
    assert resp.status == 400 and "mode must be one of live, test" in await resp.text()
    missing = await post_form(stack.client, f"/admin/api-keys/{uuid.uuid4()}/revoke", from_page="/admin/api-keys")
    assert missing.status == 404


async def test_a_webhook_is_created_with_its_secret_once_shows_deliveries_and_is_deleted(stack, admin, caplog):
    caplog.set_level(logging.INFO, logger="web.console.pages")
    form = {"url": "https://93.184.215.14/hook", "description": "ops", "events": "notification.failed"}
    resp = await post_form(stack.client, "/admin/webhooks", form, from_page="/admin/webhooks")
    text = await resp.text()
    assert resp.status == 200, text[:2000]
    secret = html.unescape(SECRET_RE.search(text).group(1))
    assert secret and "shown this once" in text
    hook_id = HOOK_ID_RE.search(text).group(1)
    listing = await page(stack.client, "/admin/webhooks")
    assert secret not in listing and "https://93.184.215.14/hook" in listing and "notification.failed" in listing
    assert f'href="/admin/webhooks/{hook_id}/delete"' in listing
    [created] = [r for r in caplog.records if getattr(r, "action", "") == "webhook created"]
    assert created.admin_id == admin.id and created.webhook_id == hook_id

    detail = await page(stack.client, f"/admin/webhooks/{hook_id}")
    assert "No delivery yet." in detail and secret not in detail
    nid = str(uuid.uuid4())
    rows = [
        {
            "event_id": uuid.uuid4(),
            "webhook": hook_id,
            "event_type": "notification.failed",
            "notification_id": nid,
            "payload": "{}",
        }
    ]
    [delivery] = await in_db(stack.client.app, webhook_deliveries.create_many, rows)
    await in_db(stack.client.app, webhook_deliveries.mark_failed, str(delivery.id), error="HTTP 500 from the receiver")
    detail = await page(stack.client, f"/admin/webhooks/{hook_id}")
    assert nid in detail and f"<td>{FAILED}</td>" in detail and "HTTP 500 from the receiver" in detail

    confirm = await page(stack.client, f"/admin/webhooks/{hook_id}/delete")
    assert "Delete this webhook?" in confirm and ">Delete</button>" in confirm
    unconfirmed = await post_form(stack.client, f"/admin/webhooks/{hook_id}/delete", from_page="/admin/webhooks")
    assert unconfirmed.status == 303 and unconfirmed.headers["Location"] == f"/admin/webhooks/{hook_id}/delete"
    resp = await post_form(
        stack.client,
        f"/admin/webhooks/{hook_id}/delete",
        {"confirm": "yes"},
        from_page=f"/admin/webhooks/{hook_id}/delete",
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/webhooks"
    assert "is deleted" in await page(stack.client, "/admin/webhooks")
    await page(stack.client, f"/admin/webhooks/{hook_id}", status=404)
    [deleted] = [r for r in caplog.records if getattr(r, "action", "") == "webhook deleted"]
    assert deleted.admin_id == admin.id and deleted.webhook_id == hook_id


async def test_a_webhook_to_an_address_herald_does_not_call_is_refused(stack, admin):
    resp = await post_form(
        stack.client,
        "/admin/webhooks",
        {"url": "http://169.254.169.254/", "description": ""},
        from_page="/admin/webhooks",
    )
    text = await resp.text()
    assert resp.status == 400 and "link-local" in text and 'role="alert"' in text
    assert 'value="http://169.254.169.254/"' in text and 'id="new-secret"' not in text
    assert "No webhook yet." in text


async def test_key_and_webhook_posts_without_a_csrf_token_are_403(stack, admin):
    for path in (
        "/admin/api-keys",
        f"/admin/api-keys/{uuid.uuid4()}/revoke",
        "/admin/webhooks",
        f"/admin/webhooks/{uuid.uuid4()}/delete",
    ):
        resp = await stack.client.post(
            path, data={"name": "x", "url": "https://93.184.215.14/hook", "confirm": "yes"}, allow_redirects=False
        )
        assert resp.status == 403, (path, resp.status)
    assert "No API key yet." in await page(stack.client, "/admin/api-keys")
    assert "No webhook yet." in await page(stack.client, "/admin/webhooks")
