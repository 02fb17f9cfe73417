"""The console in a real browser on a RabbitMQ vhost of its own (so failed.queue holds only what the
test puts there): replaying a dead letter, a form posted without its CSRF token, and every main page
at 1280 and 390 pixels: laid out without sideways scrolling, every control labelled, text contrast
of at least 4.5:1, a visible keyboard focus; their screenshots are the README's.

``HERALD_SCREENSHOTS=1`` writes the screenshots to ``docs/console/`` (``make screenshots``);
otherwise they go to the test's temporary folder, so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import make_env
from tests.support.browser import base_of, chromium, signed_in
from tests.support.console import create_admin, dead_letter_all, queue_depth, record, send

pytestmark = pytest.mark.timeout(240)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "console"
#: Returns the visible text elements whose contrast with their background is under 4.5:1.
LOW_CONTRAST_JS = """() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || !el.getClientRects().length) continue;
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!text || getComputedStyle(el).visibility === 'hidden') continue;
    const a = lum(parse(getComputedStyle(el).color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push(el.tagName + ': ' + el.textContent.trim().slice(0, 30) + ' ' + ratio.toFixed(2));
  }
  return out;
}"""
UNLABELLED_JS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.name)"""
OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture
def env(database_url, redis_prefix, rabbit_vhost):
    url, _ = rabbit_vhost
    return make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url)


@pytest.fixture
async def browser():
    async with chromium() as browser:
        yield browser


async def test_replay_a_dead_letter_and_a_post_without_its_csrf_token_is_refused(stack, browser):
    url = stack.settings.rabbitmq_url
    admin = await create_admin(stack)
    ada = await stack.create_user()
    template = await stack.create_template()
    first, second = await send(stack, ada, template), await send(stack, ada, template)
    dead_letter_all(url)
    for nid in (first, second):
        await record(stack, nid, outcome="failed", status="failed", error="smtp_5xx: 550 mailbox unavailable")
    page = await signed_in(browser, stack, admin.email, admin.password)
    await page.get_by_role("link", name="Dead letters").click()
    row = page.locator(f'tr[data-dead-letter="{first}"]')
    assert "smtp_5xx: 550 mailbox unavailable" in await row.inner_text()

    # a script's POST without the token, and the real form with its token removed: both 403
    status = await page.evaluate(
        "fetch('/admin/dead-letters/replay-all', {method: 'POST', credentials: 'same-origin'}).then(r => r.status)"
    )
    assert status == 403
    await page.evaluate("document.querySelector('form[action$=replay-all] input[name=csrf_token]').remove()")
    async with page.expect_response(lambda r: r.url.endswith("/replay-all")) as refused:
        await page.get_by_role("button", name="Replay all").click()
    assert (await refused.value).status == 403
    assert await page.get_by_role("heading", name="Not allowed").is_visible()
    assert queue_depth(url, "failed.queue") == 2, "nothing was replayed"

    await page.goto(base_of(stack) + "dead-letters")
    await page.locator(f'tr[data-dead-letter="{first}"]').get_by_role("button", name=re.compile("^Replay")).click()
    await page.wait_for_url("**/admin/dead-letters")
    notice = await page.get_by_role("status").inner_text()
    assert notice == f"{first} replayed: back on its queue with a fresh retry budget."
    assert await page.locator(f'tr[data-dead-letter="{first}"]').count() == 0
    assert await page.locator(f'tr[data-dead-letter="{second}"]').count() == 1
    assert queue_depth(url, "failed.queue") == 1 and queue_depth(url, "email.queue") == 1


async def seed(stack) -> dict:
    """A small, plausible install: three users, two templates (one edited twice), a dozen sends."""
    ada = await stack.create_user(
        name="Ada Lovelace", email="ada@example.com", push_token="fKx1-device-token-0123456789-7Qz9Lm"
    )
    grace = await stack.create_user(name="Grace Hopper", email="grace@example.com")
    await stack.create_user(name="Alan Turing", email="alan@example.com", preferences={"email": True, "push": False})
    welcome = await stack.create_template(
        code="welcome", name="Welcome", subject="Welcome, {{ name }}", content="<p>Hello {{ name }}!</p>"
    )
    for subject, content in (
        ("Welcome to Herald, {{ name }}", "<p>Hello {{ name }}, your account is ready.</p>"),
        ("Welcome to Herald, {{ name }}", "<p>Hello <b>{{ name }}</b>, your account is ready: {{ link }}</p>"),
    ):
        resp = await stack.client.put(
            "/api/v1/templates/welcome", json={"subject": subject, "content": content}, headers=stack.auth()
        )
        assert resp.status == 200
    reset = await stack.create_template(code="password-reset", name="Password reset", content="<p>{{ link }}</p>")
    failed = [await send(stack, user, welcome, request_id=f"signup-{i}") for i, user in enumerate((grace, ada, grace))]
    for nid in failed:
        await record(stack, nid, outcome="retry_scheduled", error="smtp_4xx: 451 4.7.1 greylisted, try again later")
        await record(stack, nid, outcome="failed", status="failed", error="smtp_5xx: 550 5.1.1 mailbox unavailable")
    dead_letter_all(stack.settings.rabbitmq_url)
    for i in range(6):
        nid = await send(stack, (ada, grace)[i % 2], reset, request_id=f"reset-{i}")
        if i < 4:
            await record(stack, nid, outcome="delivered", status="delivered")
    for i in range(2):
        nid = await send(stack, ada, welcome, channel="push", request_id=f"push-{i}")
        await record(stack, nid, outcome="delivered", status="delivered")
    return {"ada": ada, "failed": failed[0]}


async def check_page(page, name: str) -> None:
    assert await page.evaluate(OVERFLOW_JS) <= 0, f"{name} scrolls sideways"
    assert await page.evaluate(UNLABELLED_JS) == [], f"{name} has unlabelled controls"
    assert await page.evaluate(LOW_CONTRAST_JS) == [], f"{name} has text under 4.5:1"


async def test_every_main_page_at_1280_and_390_pixels_with_screenshots(stack, browser, tmp_path):
    folder = DOCS if os.environ.get("HERALD_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    data = await seed(stack)
    admin = await create_admin(stack, email="olive@herald.example", name="Olive Operator")
    page = await signed_in(browser, stack, admin.email, admin.password, viewport={"width": 1280, "height": 800})
    pages = {
        "overview": "",
        "notifications": "notifications",
        "notification": f"notifications/{data['failed']}",
        "dead-letters": "dead-letters",
        "template": "templates/welcome",
        "users": "users",
        "user": f"users/{data['ada']['id']}",
    }
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 800 if width == 1280 else 844})
        for name, path in pages.items():
            await page.goto(base_of(stack) + path)
            await check_page(page, f"{name} at {width}")
            if (width == 1280 and name != "user") or (width == 390 and name in ("overview", "notification")):
                target = folder / (name if width == 1280 else f"{name}-390")
                await page.screenshot(path=str(target) + ".png", full_page=True)
                assert (target.with_suffix(".png")).stat().st_size > 10_000

    # keyboard: the first Tab reaches the skip link, and focus is drawn
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(base_of(stack))
    await page.keyboard.press("Tab")
    focused = await page.evaluate(
        "() => { const e = document.activeElement, s = getComputedStyle(e);"
        " return [e.textContent.trim(), s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert focused[0] == "Skip to content" and focused[1] != "none" and focused[2] >= 2

    # the checks above can fail: faint text and a too-wide element are caught
    await page.evaluate(
        "() => { const p = document.createElement('p'); p.textContent = 'faint words'; p.style.color = '#aaaaaa';"
        " p.style.width = '3000px'; document.querySelector('main').append(p); }"
    )
    assert any(found.startswith("P: faint words") for found in await page.evaluate(LOW_CONTRAST_JS))
    assert await page.evaluate(OVERFLOW_JS) > 0
