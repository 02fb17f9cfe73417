"""Outcomes reach subscribed receivers from ``dramatiq actors`` worker processes: signed (checked
with the README's code), retried with the same event id after a 5xx and a timeout, given up after
WEBHOOK_RETRY_MAX, and never at the cost of the notification (README, "Webhooks")."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.e2e.test_delivery import queue_depth, wait_status
from tests.support.processes import worker
from tests.support.smtp_server import smtp_server
from tests.support.webhook_receiver import start_receiver
from web.common.auth import Caller
from web.gateway import webhook_service as hooks

ADMIN = Caller(sub="admin-1", role="admin")
UNIT_MS = 100


@pytest.fixture
def env(env):
    # the receiver listens on 127.0.0.1: private addresses must be allowed, for the gateway's
    # subscription check and for the workers' send-time check alike
    return {
        **env,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_RETRY_MAX": "2",
        "WEBHOOK_BACKOFF_UNIT_MS": str(UNIT_MS),
        "WEBHOOK_TIMEOUT_S": "1",
    }


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


async def subscribe(stack, receiver, path: str, events=None) -> dict:
    made = await hooks.create_webhook(stack.client.app, ADMIN, url=receiver.url(path), events=events)
    receiver.secrets[path] = made["secret"]
    return made


async def wait_deliveries(stack, webhook: dict, predicate, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items, _ = await hooks.list_deliveries(stack.client.app, ADMIN, webhook["id"], page=1, limit=20)
        if items and predicate(items):
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"deliveries of {webhook['url']} never settled: {items}")


async def send(stack, user, template, request_id: str) -> str:
    resp = await stack.send(
        notification_type="email",
        user_id=user["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id=request_id,
    )
    assert resp.status == 202, await resp.text()
    return (await resp.json())["data"]["notification_id"]


async def test_a_delivery_is_signed_retried_with_the_same_event_and_given_up_after_the_limit(
    stack, smtp, tmp_path, aiohttp_server
):
    receiver = await start_receiver(aiohttp_server)
    ok = await subscribe(stack, receiver, "/ok", events=["notification.delivered"])
    flaky = await subscribe(stack, receiver, "/flaky")
    down = await subscribe(stack, receiver, "/down")
    await subscribe(stack, receiver, "/failures-only", events=["notification.failed"])
    receiver.script("/flaky", "500", "sleep:3", "200")  # a 5xx, then no answer within 1 s, then fine
    receiver.script("/down", "503")
    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log", queues=("email.queue", "webhooks.queue")):
        nid = await send(stack, user, template, "hooked-1")
        note = await wait_status(stack, nid, "delivered")
        [ok_delivery] = await wait_deliveries(stack, ok, lambda d: d[0]["state"] == "succeeded")
        [flaky_delivery] = await wait_deliveries(stack, flaky, lambda d: d[0]["state"] == "succeeded")
        [down_delivery] = await wait_deliveries(stack, down, lambda d: d[0]["state"] == "failed")
    # what the receiver saw: every request signed as the README checks it, one event throughout
    assert [len(receiver.on(p)) for p in ("/ok", "/flaky", "/down", "/failures-only")] == [1, 3, 3, 0]
    assert all(hit.verified for hit in receiver.hits), [h.headers for h in receiver.hits]
    bodies = {hit.body for hit in receiver.hits}
    assert len(bodies) == 1, "every attempt to every subscriber carries the same bytes"
    event = receiver.hits[0].json
    assert {hit.headers["X-Herald-Event-ID"] for hit in receiver.hits} == {event["id"]}
    assert all(hit.headers["Content-Type"] == "application/json" for hit in receiver.hits)
    assert event["type"] == "notification.delivered" and event["created_at"].endswith("Z")
    assert event["data"]["notification_id"] == nid and event["data"]["status"] == "delivered"
    assert event["data"]["mode"] == "live" and event["data"]["delivered_at"] == note["delivered_at"]
    # retries waited their 2^n backoff
    for n, (a, b) in enumerate(itertools.pairwise(receiver.on("/flaky")), start=1):
        assert b.at - a.at >= UNIT_MS * 2**n / 1000, (n, b.at - a.at)
    # and each attempt is recorded on its delivery
    assert (ok_delivery["attempts"], ok_delivery["last_status_code"]) == (1, 200)
    assert (flaky_delivery["attempts"], flaky_delivery["last_status_code"], flaky_delivery["last_error"]) == (
        3,
        200,
        None,
    )
    assert (down_delivery["attempts"], down_delivery["last_status_code"]) == (3, 503)
    assert down_delivery["last_error"] == "HTTP 503: answer 503"
    assert {d["event_id"] for d in (ok_delivery, flaky_delivery, down_delivery)} == {event["id"]}
    # the notification never noticed: still delivered, its history untouched, nothing dead-lettered
    after = await wait_status(stack, nid, "delivered")
    assert [a["outcome"] for a in after["attempts"]] == ["delivered"] and after["error"] is None
    assert queue_depth(stack.settings.rabbitmq_url, "failed.queue") == 0
    log = (tmp_path / "worker.log").read_text()
    assert "webhook delivery failed for good" in log and "whsec_" not in log.replace("whsec_***", "")


async def test_a_failed_notification_is_an_event_for_those_who_want_it(stack, smtp, tmp_path, aiohttp_server):
    smtp.fail_with(550, stage="rcpt")
    receiver = await start_receiver(aiohttp_server)
    await subscribe(stack, receiver, "/delivered", events=["notification.delivered"])
    failures = await subscribe(stack, receiver, "/failed", events=["notification.failed"])
    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log", queues=("email.queue", "webhooks.queue")):
        nid = await send(stack, user, template, "bounced-1")
        await wait_status(stack, nid, "failed")
        await wait_deliveries(stack, failures, lambda d: d[0]["state"] == "succeeded")
    [hit] = receiver.hits
    assert hit.path == "/failed" and hit.verified
    event = hit.json
    assert event["type"] == "notification.failed" and event["data"]["status"] == "failed"
    assert "smtp_5xx" in event["data"]["error"]
