"""A worker process killed with SIGKILL in the middle of a few hundred sends: every notification
that got a 202 is delivered, none is lost, and duplicates stay within the crash window (the
messages in flight in the killed worker: at most its prefetch, its threads plus the margin)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp
import pytest
import redis

from middleware.stack import CLAIM_MS
from tests.faults.conftest import WORKER_PREFETCH_MARGIN, WORKER_THREADS
from tests.support.ledger import Ledger
from tests.support.resources import REDIS_URL

SENDS = 200


def delivered_by(log_path) -> int:
    try:
        return log_path.read_text().count('"notification delivered"')
    except FileNotFoundError:
        return 0


async def expire_orphaned_claims(prefix: str, since: float, done: asyncio.Event) -> list[str]:
    """The killed worker's send claims (``sending:<id>``) would free themselves after ``CLAIM_MS``
    (70 s); the test fast-forwards that clock instead of waiting: a claim older than 5 s, held
    from before the kill, cannot belong to a live send (a send takes milliseconds here), so it is
    expired now. Returns the claims it expired, for the report."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    expired: list[str] = []
    try:
        while not done.is_set():
            if time.monotonic() - since > 5:
                for key in client.scan_iter(match=f"{prefix}sending:*", count=1000):
                    ttl = client.pttl(key)
                    if 0 < ttl < CLAIM_MS - 5_000:
                        client.delete(key)
                        expired.append(key)
            await asyncio.sleep(0.5)
    finally:
        client.close()
    return expired


@pytest.mark.timeout(150)
async def test_worker_sigkill_mid_stream_loses_nothing(herald):
    ledger = Ledger("worker-sigkill", request_prefix="kill")
    victim, victim_log = herald.workers[0], herald.tmp_path / "worker-1.log"
    async with aiohttp.ClientSession() as session:
        sending = asyncio.create_task(herald.send_many(session, ledger, SENDS, concurrency=8))
        deadline = time.monotonic() + 40
        # kill once the victim is busy delivering and most of the work is still ahead
        while delivered_by(victim_log) < 10:
            assert time.monotonic() < deadline, "the first worker delivered nothing"
            await asyncio.sleep(0.05)
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=10)
        delivered_at_kill = len(herald.smtp.messages)
        await sending
    done = asyncio.Event()
    claims = asyncio.create_task(expire_orphaned_claims(herald.env["REDIS_KEY_PREFIX"], killed_at, done))
    try:
        await herald.settle(ledger, timeout=60)
    finally:
        done.set()
        expired = await claims
    result = herald.reconcile(ledger)
    print(
        f"killed worker 1 (pid {victim.pid}) with {delivered_at_kill} of {SENDS} delivered; "
        f"it had delivered {delivered_by(victim_log)}; orphaned send claims expired early: {len(expired)}"
    )
    assert result.accepted == SENDS, result.line()  # no dependency was down: every send is accepted
    assert result.lost == 0, result.details()
    assert result.bad_status == 0, result.details()
    assert result.extra_copies <= WORKER_THREADS + WORKER_PREFETCH_MARGIN, result.details()
    assert result.unexpected == 0 and result.delivered_after_503 == 0, result.details()
