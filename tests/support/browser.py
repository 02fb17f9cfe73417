"""A real Chromium for the console's browser tests: Debian's ``chromium`` package driven by
Playwright (Playwright's own browser download is never used; ``.ci/run`` installs the package)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's small /dev/shm must not crash the renderer
]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator:
    """A browser; the test fails (never skips) when Chromium is missing, so CI cannot pass without it."""
    from playwright.async_api import async_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def base_of(stack) -> str:
    """The console's address on the stack's gateway (a real port on 127.0.0.1)."""
    return str(stack.client.make_url("/admin/"))


async def signed_in(browser, stack, email: str, password: str, **context):
    """A page of a new browser context, signed in through the form (the keyboard after the e-mail)."""
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(base_of(stack))
    assert "/admin/login" in page.url
    await page.get_by_label("Email").fill(email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(password)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    return page
