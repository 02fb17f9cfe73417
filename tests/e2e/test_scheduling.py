"""Scheduled and expiring sends through real worker processes: a scheduled send arrives on time
(published by a maintenance worker's due-time loop), and a notification that expires while it
waits (for a retry, in the queue, behind an open circuit breaker) ends ``expired``, is never sent,
and is not dead-lettered."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
import redis

from tests.e2e.test_delivery import queue_depth, wait_mail, wait_status
from tests.e2e.test_retries import FAST, send_one
from tests.support.processes import worker
from tests.support.resources import REDIS_URL
from tests.support.smtp_server import smtp_server

QUEUES = ("email.queue", "maintenance.queue")


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.mark.timeout(90)
async def test_a_scheduled_send_arrives_on_time(stack, smtp, tmp_path):
    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log", queues=QUEUES):
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
        nid = await send_one(stack, user, template, "on-time", send_at=due.isoformat())
        await asyncio.sleep(2)
        assert smtp.messages == [], "not before its time"
        [mail] = await wait_mail(smtp, 1, timeout=20)
        arrived = dt.datetime.now(dt.UTC)
        note = await wait_status(stack, nid, "delivered", timeout=10)
    assert due <= arrived <= due + dt.timedelta(seconds=5), (due, arrived)
    assert [a["outcome"] for a in note["attempts"]] == ["published", "delivered"]
    assert mail.message["Subject"]


@pytest.mark.timeout(90)
async def test_expiry_while_waiting_for_a_retry_ends_expired_not_failed(stack, smtp, tmp_path):
    smtp.fail_with(451, times=100)
    user = await stack.create_user()
    template = await stack.create_template()
    # a first retry 20 s away: the notification expires (in 8 s) while it waits
    env = {**stack.env, **smtp.env, **FAST, "RETRY_BACKOFF_UNIT_MS": "10000"}
    with worker(env, tmp_path / "worker.log", queues=QUEUES):
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=8)
        started = time.monotonic()
        nid = await send_one(stack, user, template, "expiring", expires_at=expires.isoformat())
        note = await wait_status(stack, nid, "expired", timeout=20)
    assert time.monotonic() - started < 18, "ended when it expired, not when the 20 s retry came due"
    assert [a["outcome"] for a in note["attempts"]] == ["retry_scheduled", "expired"]
    assert note["error"] and note["retry_count"] == 0
    assert queue_depth(stack.settings.rabbitmq_url, "failed.queue") == 0, "not dead-lettered"
    assert smtp.messages == []


@pytest.mark.timeout(90)
async def test_expiry_while_queued_ends_expired_when_a_worker_comes(stack, smtp, tmp_path):
    user = await stack.create_user()
    template = await stack.create_template()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    nid = await send_one(stack, user, template, "queued-expiry", expires_at=expires.isoformat())
    await asyncio.sleep(3)  # no worker yet: it expires waiting in email.queue
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log", queues=QUEUES):
        note = await wait_status(stack, nid, "expired", timeout=20)
    assert [a["outcome"] for a in note["attempts"]] == ["expired"]
    assert smtp.messages == [] and queue_depth(stack.settings.rabbitmq_url, "failed.queue") == 0


@pytest.mark.timeout(90)
async def test_a_scheduled_send_cancelled_before_its_time_is_never_sent(stack, smtp, tmp_path):
    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log", queues=QUEUES):
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        nid = await send_one(stack, user, template, "cancelled-early", send_at=due.isoformat())
        resp = await stack.client.post(f"/api/v1/notifications/{nid}/cancel", headers=stack.auth())
        assert resp.status == 200
        await asyncio.sleep(6)  # past its time, with the due-time loop running
    note = await wait_status(stack, nid, "cancelled", timeout=5)
    assert smtp.messages == [] and [a["outcome"] for a in note["attempts"]] == ["cancelled"]


async def wait_breaker(client: redis.Redis, key: str, wanted: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while (fields := client.hgetall(key)).get("state") != wanted:
        assert time.monotonic() < deadline, f"circuit not {wanted}: {fields}"
        await asyncio.sleep(0.05)
    return fields


def mailed_ids(smtp) -> list[str]:
    return [(m.message.get("X-Herald-Notification-ID") or "").strip() for m in list(smtp.messages)]


@pytest.mark.timeout(90)
async def test_expiry_behind_an_open_breaker_ends_expired_and_is_never_sent(stack, smtp, tmp_path):
    """README, "Scheduling, expiry, cancelling": behind an open breaker the deferral is cut to the
    expiry, and an expired message passes the breaker only to be ended, so the provider never
    sees it, not even once it is back and the circuit has closed."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = f"{stack.env['REDIS_KEY_PREFIX']}circuit:smtp"
    user = await stack.create_user()
    template = await stack.create_template()
    smtp.stop()  # the port refuses connections: the first attempt opens the circuit
    # one failure opens it for 10 s; the notification expires (in 3 s) while it waits behind it
    env = {
        **stack.env,
        **smtp.env,
        **FAST,
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "CIRCUIT_RECOVERY_TIMEOUT_S": "10",
        "CIRCUIT_SUCCESS_THRESHOLD": "1",
    }
    try:
        with worker(env, tmp_path / "worker.log", queues=QUEUES):
            opener = await send_one(stack, user, template, "breaker-opener")
            await wait_breaker(client, key, "OPEN", timeout=20)
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
            started = time.monotonic()
            nid = await send_one(stack, user, template, "behind-breaker", expires_at=expires.isoformat())
            smtp.start()  # the provider is back, but the circuit stays open until its recovery time
            note = await wait_status(stack, nid, "expired", timeout=20)
            ended_after = time.monotonic() - started
            # the opener's probe closes the circuit; the expired one must not go out with it
            await wait_status(stack, opener, "delivered", timeout=30)
            await wait_breaker(client, key, "CLOSED", timeout=5)
    finally:
        client.close()
    assert ended_after < 8, "ended when it expired, not when the circuit's 10 s recovery came"
    assert [a["outcome"] for a in note["attempts"]] == ["expired"], "never handed to the provider"
    assert note["retry_count"] == 0 and "expired before it was handed to the provider" in note["error"]
    lines = [json.loads(x) for x in (tmp_path / "worker.log").read_text().splitlines() if x.startswith("{")]
    deferred = [x for x in lines if x.get("notification_id") == nid and "not admitting" in x["message"]]
    assert deferred, "it waited behind the open circuit (not merely in the queue)"
    assert mailed_ids(smtp) == [opener], "the provider received the opener only"
    # the worker stopped: nothing of it is left in a queue to be sent later, nor dead-lettered
    url = stack.settings.rabbitmq_url
    assert [queue_depth(url, q) for q in ("email.queue", "email.queue.DQ", "failed.queue")] == [0, 0, 0]
