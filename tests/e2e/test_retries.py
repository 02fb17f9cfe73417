"""Retries, dead-lettering and the shared circuit breaker, end to end: the gateway, a real
``dramatiq actors`` worker process and a real SMTP server that fails on command. Time is scaled
down through the settings; every wait is a poll with a deadline."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time

import pika
import pytest
import redis
from dramatiq.common import dq_name, q_name
from dramatiq.message import Message

from tests.e2e.test_delivery import queue_depth, wait_status
from tests.support.processes import worker
from tests.support.resources import REDIS_URL
from tests.support.smtp_server import smtp_server

UNIT_MS = 100
#: Scheduling slack per retry: the worker checks due messages every ``dramatiq_worker_timeout``
#: (100 ms here), plus a send and two database writes.
SLACK_MS = 700
FAST = {
    "RETRY_BACKOFF_UNIT_MS": str(UNIT_MS),
    "RETRY_MAX": "5",
    "dramatiq_worker_timeout": "100",
    "CIRCUIT_RECOVERY_TIMEOUT_S": "2",
}


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


def attempt_times(note: dict) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(a["time"].rstrip("Z")) for a in note["attempts"]]


async def send_one(stack, user, template, request_id: str, **extra) -> str:
    resp = await stack.send(
        notification_type="email",
        user_id=user["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id=request_id,
        **extra,
    )
    assert resp.status == 202, await resp.text()
    return (await resp.json())["data"]["notification_id"]


async def wait_depth(url: str, queue: str, wanted: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (depth := queue_depth(url, queue)) != wanted:
        assert time.monotonic() < deadline, f"{queue} holds {depth}, expected {wanted}"
        await asyncio.sleep(0.1)


async def test_smtp_451_retries_on_the_2n_schedule_then_fails_into_the_dead_letter_queue(stack, smtp, tmp_path):
    smtp.fail_with(451)
    user = await stack.create_user()
    template = await stack.create_template()
    env = {**stack.env, **smtp.env, **FAST, "CIRCUIT_FAILURE_THRESHOLD": "100"}
    with worker(env, tmp_path / "worker.log"):
        nid = await send_one(stack, user, template, "retry-451")
        note = await wait_status(stack, nid, "failed", timeout=25)
        await wait_depth(stack.settings.rabbitmq_url, "failed.queue", 1)
    assert [a["outcome"] for a in note["attempts"]] == ["retry_scheduled"] * 5 + ["failed"]
    assert note["retry_count"] == 5 and "smtp_4xx" in note["error"]
    assert all("smtp_4xx" in a["error"] for a in note["attempts"])
    times = attempt_times(note)
    gaps = [(b - a) / dt.timedelta(milliseconds=1) for a, b in itertools.pairwise(times)]
    for n, gap in enumerate(gaps, start=1):
        assert UNIT_MS * 2**n <= gap <= UNIT_MS * 2**n + SLACK_MS, (n, gaps)
    assert smtp.messages == []
    assert queue_depth(stack.settings.rabbitmq_url, "email.queue.DQ") == 0
    log = (tmp_path / "worker.log").read_text()
    assert "moved to the dead-letter queue (retries_exhausted)" in log


async def test_smtp_550_fails_at_once_without_retries(stack, smtp, tmp_path):
    smtp.fail_with(550)
    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env, **FAST}, tmp_path / "worker.log"):
        nid = await send_one(stack, user, template, "retry-550")
        note = await wait_status(stack, nid, "failed", timeout=15)
        await wait_depth(stack.settings.rabbitmq_url, "failed.queue", 1)
    assert [a["outcome"] for a in note["attempts"]] == ["failed"] and note["retry_count"] == 0
    assert "smtp_5xx" in note["error"]
    assert queue_depth(stack.settings.rabbitmq_url, "email.queue.DQ") == 0
    assert "moved to the dead-letter queue (permanent_error)" in (tmp_path / "worker.log").read_text()


async def test_breaker_opens_on_refused_connections_and_a_probe_closes_it(stack, smtp, tmp_path):
    threshold, count, threads = 3, 6, 2
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = f"{stack.env['REDIS_KEY_PREFIX']}circuit:smtp"
    user = await stack.create_user()
    template = await stack.create_template()
    smtp.stop()  # the port now refuses connections
    env = {
        **stack.env,
        **smtp.env,
        **FAST,
        "CIRCUIT_FAILURE_THRESHOLD": str(threshold),
        "CIRCUIT_SUCCESS_THRESHOLD": "2",
    }
    try:
        with worker(env, tmp_path / "worker.log", threads=threads):
            nids = [await send_one(stack, user, template, f"cb-{i}") for i in range(count)]
            deadline = time.monotonic() + 15
            while client.hget(key, "state") != "OPEN":
                assert time.monotonic() < deadline, client.hgetall(key)
                await asyncio.sleep(0.02)
            opened = client.hgetall(key)
            smtp.start()  # the provider is back, but the circuit stays open until the recovery time
            baseline = smtp.connections
            states_seen = set()
            deadline = time.monotonic() + 25
            while len(smtp.messages) < count:
                connections = smtp.connections  # read before the state: a probe implies HALF_OPEN first
                state = client.hget(key, "state")
                states_seen.add(state)
                if state == "OPEN":
                    # a send admitted while the circuit was still closed may be in flight when it opens
                    # (one per other thread, as the retry count below allows); nothing admitted later
                    assert connections - baseline <= threads - 1, (
                        "the provider was contacted while the circuit was open"
                    )
                assert time.monotonic() < deadline, f"{len(smtp.messages)} of {count} delivered"
                await asyncio.sleep(0.02)
            notes = [await wait_status(stack, nid, "delivered", timeout=10) for nid in nids]
    finally:
        closed = client.hgetall(key)
        client.close()
    assert int(opened["failure_count"]) == threshold
    assert closed["state"] == "CLOSED" and closed["failure_count"] == "0", closed
    assert {"OPEN", "CLOSED"} <= states_seen
    # no retries spent while open: every failed attempt came before the circuit opened
    retries = [a for note in notes for a in note["attempts"] if a["outcome"] == "retry_scheduled"]
    assert threshold <= len(retries) <= threshold + threads - 1, retries
    opened_at = dt.datetime.fromtimestamp(float(opened["last_failure_time"]), dt.UTC).replace(tzinfo=None)
    assert all(
        t <= opened_at + dt.timedelta(milliseconds=200)
        for note in notes
        for t, a in zip(attempt_times(note), note["attempts"], strict=True)
        if a["outcome"] == "retry_scheduled"
    )
    assert sorted(m.message["Message-ID"].split("@")[0].strip("<") for m in smtp.messages) == sorted(nids)


async def test_a_retry_keeps_its_amqp_priority(stack, smtp, tmp_path):
    from messaging.rabbitmq import HeraldBroker
    from middleware.priority import Priority

    url = stack.settings.rabbitmq_url
    smtp.fail_with(451, times=1)
    user = await stack.create_user()
    template = await stack.create_template()
    # a long first wait, so the retry is still in the delay queue when the worker is stopped
    env = {**stack.env, **smtp.env, **FAST, "RETRY_BACKOFF_UNIT_MS": "30000"}
    vhost = url.rsplit("/", 1)[1]
    with worker(env, tmp_path / "worker-1.log"):
        nid = await send_one(stack, user, template, "prio-retry", priority=9)
        deadline = time.monotonic() + 15
        # stop only once the failed message is acked and its retry is held from the delay queue, so
        # the stop cannot fall between the two (which would leave two copies: the crash window)
        while unacked(vhost) != {"email.queue": 0, "email.queue.DQ": 1}:
            assert time.monotonic() < deadline, unacked(vhost)
            await asyncio.sleep(0.1)
        assert (await status_of(stack, nid))["attempts"][0]["outcome"] == "retry_scheduled"
    # stopped: the delayed retry went back to the delay queue, as published by Backoff
    await wait_depth(url, dq_name("email.queue"), 1)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        method, properties, body = channel.basic_get(dq_name("email.queue"))
        delayed = Message.decode(body)
        assert properties.priority == 9 and properties.message_id == nid
        assert delayed.options["broker_priority"] == 9 and delayed.options["retries"] == 1
        assert delayed.args[0]["retry_count"] == 1
        # the worker's move of a due message back to its queue (dramatiq worker.handle_delayed_messages)
        due = delayed.copy(queue_name=q_name(delayed.queue_name))
        del due.options["eta"]
        broker = HeraldBroker(url=url, middleware=[Priority(margin=0)])
        broker.enqueue(due)
        broker.close()
        channel.basic_ack(method.delivery_tag)
        method, properties, _ = channel.basic_get("email.queue")
        assert properties.priority == 9
        channel.basic_nack(method.delivery_tag, requeue=True)
    finally:
        conn.close()
    with worker(env, tmp_path / "worker-2.log"):
        note = await wait_status(stack, nid, "delivered", timeout=15)
    assert [a["outcome"] for a in note["attempts"]] == ["retry_scheduled", "delivered"]
    assert note["retry_count"] == 1 and len(smtp.messages) == 1


def unacked(vhost: str) -> dict[str, int]:
    from tests.support.resources import rabbitmqctl

    rows = rabbitmqctl("list_queues", "-p", vhost, "name", "messages_unacknowledged", "messages_ready")
    out = {}
    for line in rows.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("email.queue", "email.queue.DQ") and parts[1].isdigit():
            out[parts[0]] = int(parts[1]) + (int(parts[2]) if parts[0] == "email.queue" else 0)
    return out


async def status_of(stack, nid: str) -> dict:
    resp = await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth())
    return (await resp.json())["data"]
