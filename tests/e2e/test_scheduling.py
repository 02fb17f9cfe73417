"""Scheduled and expiring sends through real worker processes: a scheduled send arrives on time
(published by a maintenance worker's due-time loop), and a notification that expires while it
waits for a retry ends ``expired``, is never sent, and is not dead-lettered."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from tests.e2e.test_delivery import queue_depth, wait_mail, wait_status
from tests.e2e.test_retries import FAST, send_one
from tests.support.processes import worker
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
