"""The console in a real browser (Debian's Chromium driven by Playwright) against a real gateway on a
real port, with the user and template services, PostgreSQL, Redis and RabbitMQ behind it.

What a person does: sign in, be refused when not an admin, search a notification and read its
timeline, replay a dead letter, edit a template and watch the preview change, restore a version,
create and revoke an API key, sign out. The dead-letter queue's, and the screenshots', are in
``test_console_browser_queue.py``.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.support.browser import base_of, chromium, signed_in
from tests.support.console import create_admin, record, send
from web.console.views.auth import REFUSED

pytestmark = pytest.mark.timeout(180)


async def preview_text(page) -> str:
    """The text of the sandboxed preview frame (no script runs in it, so it is read from outside)."""
    frame = await (await page.locator("#preview-html").element_handle()).content_frame()
    await frame.wait_for_load_state()
    return await frame.evaluate("document.body.innerText")


@pytest.fixture
async def browser():
    async with chromium() as browser:
        yield browser


async def test_an_admin_signs_in_sees_the_overview_refresh_itself_and_signs_out(stack, browser):
    admin = await create_admin(stack)
    ada = await stack.create_user()
    template = await stack.create_template()
    page = await signed_in(browser, stack, admin.email, admin.password)
    await page.get_by_role("heading", name="Overview").wait_for()
    accepted = page.locator('tr[data-channel="email"] [data-count="accepted"]')
    assert await accepted.inner_text() == "0"
    await send(stack, ada, template)
    # no reload: the page's script swaps in fresh figures within its refresh interval
    await expect(accepted).to_have_text("1", timeout=12_000)
    assert await page.locator("#overview-live").get_attribute("data-refreshed")
    assert "refresh every 5 s" in await page.locator("#refresh-state").inner_text()

    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["herald_console"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/admin"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/admin/login?reason=signed_out")
    assert await page.get_by_role("status").inner_text() == "You are signed out."
    assert "herald_console" not in {c["name"] for c in await page.context.cookies()}
    await page.goto(base_of(stack) + "notifications")
    assert "/admin/login" in page.url


async def test_a_user_who_is_not_an_admin_is_refused_and_gets_no_session(stack, browser):
    user = await stack.create_user(password="correct-horse-1")
    page = await signed_in(browser, stack, user["email"], "correct-horse-1")
    assert "/admin/login" in page.url
    assert await page.get_by_role("alert").inner_text() == REFUSED
    assert "herald_console" not in {c["name"] for c in await page.context.cookies()}
    await page.goto(base_of(stack))
    assert "/admin/login" in page.url


async def test_search_a_notification_and_read_its_timeline(stack, browser):
    admin = await create_admin(stack)
    ada = await stack.create_user()
    template = await stack.create_template()
    await send(stack, ada, template, request_id="other-order")
    nid = await send(stack, ada, template, request_id="order-4711", correlation_id="trace-4711")
    await record(stack, nid, outcome="retry_scheduled", error="smtp_4xx: 451 greylisted")
    await record(stack, nid, outcome="failed", status="failed", error="smtp_5xx: 550 mailbox unavailable")
    page = await signed_in(browser, stack, admin.email, admin.password)
    await page.get_by_role("link", name="Notifications").click()
    await page.get_by_label("Search").fill("order-4711")
    await page.get_by_label("Search").press("Enter")
    results = page.locator("table.list tbody tr")
    await page.wait_for_url(re.compile(r".*q=order-4711.*"))
    assert await results.count() == 1
    await results.get_by_role("link", name=nid).click()
    await page.get_by_role("heading", name=re.compile("Notification")).wait_for()
    assert await page.locator("[data-status]").inner_text() == "failed"
    assert await page.locator("[data-correlation]").inner_text() == "trace-4711"
    timeline = await page.locator("ol.timeline").inner_text()
    assert "accepted" in timeline and "retry_scheduled" in timeline and "smtp_4xx: 451 greylisted" in timeline
    assert "smtp_5xx: 550 mailbox unavailable" in timeline and timeline.count(" UTC") == 3
    # by the user's e-mail, with the status filter
    await page.goto(base_of(stack) + "notifications")
    await page.get_by_label("Search").fill(ada["email"])
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url(re.compile(r".*status=failed.*"))
    assert await page.locator("table.list tbody tr").count() == 1


async def test_edit_a_template_watch_the_preview_then_save_compare_and_restore(stack, browser):
    admin = await create_admin(stack)
    template = await stack.create_template(subject="Hello {{ name }}", content="<p>Hi <b>{{ name }}</b></p>")
    code = template["code"]
    page = await signed_in(browser, stack, admin.email, admin.password)
    await page.goto(base_of(stack) + f"templates/{code}")
    assert await preview_text(page) == "Hi Name"

    # typing re-renders the preview (no button pressed)
    await page.get_by_label("Content").fill("<p>Bonjour <i>{{ name }}</i>, see {{ link }}</p>")
    await page.get_by_label("Sample variables (JSON)").fill('{"name": "Ada", "link": "https://example.org"}')
    await expect(page.locator("#preview-html")).to_have_attribute(
        "srcdoc", re.compile("Bonjour <i>Ada</i>"), timeout=10_000
    )
    assert await preview_text(page) == "Bonjour Ada, see https://example.org"
    assert await page.locator("#preview-subject").inner_text() == "Hello Ada"
    await page.get_by_label("Content").fill("<p>{{ missing }}</p>")
    await page.locator("#preview-error").filter(has_text="missing template variable: missing").wait_for()
    await page.get_by_label("Content").fill("<p>Bonjour <i>{{ name }}</i>, see {{ link }}</p>")
    await page.locator("#preview-error").wait_for(state="hidden")

    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("status").filter(has_text="Saved as version 2.").wait_for()
    assert await page.locator("[data-version]").inner_text() == "2"

    await page.get_by_label("From version").select_option("1")
    await page.get_by_label("To version").select_option("2")
    await page.get_by_role("button", name="Compare").click()
    await page.get_by_role("heading", name=re.compile("version 1 → 2")).wait_for()
    assert "Hi <b>{{ name }}</b>" in await page.locator("tr.diff-del").first.inner_text()
    assert "Bonjour" in await page.locator("tr.diff-add").first.inner_text()
    await page.go_back()

    await page.locator('tr[data-history-version="1"]').get_by_role("button", name=re.compile("^Restore")).click()
    await page.get_by_role("status").filter(has_text="Version 1 restored as version 3.").wait_for()
    assert await page.get_by_label("Content").input_value() == "<p>Hi <b>{{ name }}</b></p>"
    resp = await stack.client.get(f"/api/v1/templates/{code}", headers=stack.auth())
    assert (await resp.json())["data"]["version"] == 3


async def test_create_and_revoke_an_api_key(stack, browser):
    admin = await create_admin(stack)
    page = await signed_in(browser, stack, admin.email, admin.password)
    await page.get_by_role("link", name="API keys").click()
    await page.get_by_role("heading", name="API keys").wait_for()
    await page.get_by_label("Name").fill("shop backend")
    await page.get_by_label("Mode").select_option("test")
    await page.get_by_role("button", name="Create key").click()
    key = await page.get_by_label("Key", exact=True).input_value()
    assert key.startswith("hk_test_")
    row = page.locator("tr[data-api-key]").filter(has_text="shop backend")
    assert "test" in await row.inner_text()

    await row.get_by_role("button", name=re.compile("^Revoke")).focus()
    await page.keyboard.press("Enter")
    await page.get_by_role("status").filter(has_text="is revoked.").wait_for()
    assert key not in await page.content()
    assert await row.get_by_role("button", name=re.compile("^Revoke")).count() == 0
