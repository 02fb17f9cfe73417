"""PostgreSQL going away in the instant between the provider's acceptance of a mail and the
worker's recording of it: the notification must still be delivered exactly once. No process
crashes here, so the only duplicate window (a crash between acceptance and recording)
does not apply.

The SMTP server's DATA handler is wrapped so that PostgreSQL's proxy is cut right after the message
is accepted and before the ``250`` reaches the worker: the timing is deterministic, not a race.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.support.ledger import Ledger


@pytest.mark.timeout(90)
async def test_postgres_lost_after_the_provider_accepted_does_not_send_twice(herald):
    ledger = Ledger("postgres-after-accept", request_prefix="pgwin")
    proxy = herald.proxies["postgres"]
    handler = herald.smtp._controller.handler
    accept = handler.handle_DATA
    fired: list[float] = []

    async def handle_data(server, session, envelope):
        reply = await accept(server, session, envelope)
        if reply.startswith("250") and not fired:
            proxy.cut()  # blocks until every PostgreSQL connection is closed; then the 250 goes out
            fired.append(time.monotonic())
        return reply

    handler.handle_DATA = handle_data
    async with aiohttp.ClientSession() as session:
        assert await herald.send(session, ledger) == 202
    deadline = time.monotonic() + 20
    while not fired:
        assert time.monotonic() < deadline, "the mail never reached the SMTP server"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # PostgreSQL stays away for a second, then comes back
    proxy.restore()
    await herald.settle(ledger, timeout=30)
    result = herald.reconcile(ledger)
    assert result.lost == 0 and result.bad_status == 0, result.details()
    assert result.duplicated == 0, result.details()
