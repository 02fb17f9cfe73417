"""A publish the gateway cannot confirm, racing the workers (``web/gateway/recorder.py``).

A confirm lost with its connection leaves a message that may be on a queue while the gateway thinks
it refused. The gateway then withdraws the send under the send claim, and whatever it answers must
be the truth: 503 only if no worker can deliver the message (its row is gone), 202 if a worker
already took it. A send whose publish outlasts the gateway's timeout is answered by the publish's
own outcome, never by a 503 while the message may still reach the queue.

The publisher here publishes for real on the test's vhost and then reports what the test needs
(the confirm lost, the publish slow); a worker taking the message is its send claim in Redis or
its row moved to ``delivered``, as the delivery guard leaves them. Everything is read back from
PostgreSQL, Redis and RabbitMQ.
"""

from __future__ import annotations

import asyncio
import threading

import psycopg2
import redis

from models.redis_keys import RedisKeys
from tests.support import resources
from tests.support.sends import drain_queue, send_body, total_for
from web.gateway.app_keys import pipeline_key
from web.gateway.publisher import PublishError


class _Publisher:
    """The gateway's publisher, with a hook run after each real publish and the outcome replaced."""

    def __init__(self, real, *, after=None, confirm_lost: bool = False, delay_s: float = 0.0) -> None:
        self.real, self.after, self.confirm_lost, self.delay_s = real, after, confirm_lost, delay_s
        self.published: list[str] = []

    async def publish_many(self, messages):
        await asyncio.sleep(self.delay_s)
        outcomes = await self.real.publish_many(messages)
        assert outcomes == [None] * len(messages)
        ids = [message.args[0]["notification_id"] for message in messages]
        self.published += ids
        if self.after is not None:
            for nid in ids:
                self.after(nid)
        return [PublishError("confirm lost with the connection")] * len(messages) if self.confirm_lost else outcomes


def _use(stack, publisher: _Publisher) -> _Publisher:
    recorder = stack.client.app[pipeline_key].recorder
    publisher.real = recorder.publisher
    recorder.publisher = publisher
    return publisher


def _claims(stack) -> tuple[redis.Redis, RedisKeys]:
    return redis.Redis.from_url(resources.REDIS_URL, decode_responses=True), RedisKeys(stack.env["REDIS_KEY_PREFIX"])


async def test_a_send_whose_confirm_was_lost_is_withdrawn_answered_503_and_may_be_sent_again(burst_stack):
    stack, user, template = burst_stack
    publisher = _use(stack, _Publisher(None, confirm_lost=True))
    body = send_body(user, template)
    resp = await stack.send(**body)
    assert resp.status == 503, await resp.text()
    assert (await resp.json())["error"] == "SERVICE_UNAVAILABLE"
    # The message did reach the queue, but its notification has no record: a worker drops it.
    [nid] = publisher.published
    assert drain_queue(stack.env["RABBITMQ_URL"]) == [nid]
    assert await total_for(stack, user) == 0
    client, keys = _claims(stack)
    with client:
        assert client.get(keys.sending(nid)) is None  # the withdrawal's claim is given back

    publisher.confirm_lost = False
    again = await stack.send(**body)
    assert again.status == 202
    assert await total_for(stack, user) == 1


async def test_a_send_whose_confirm_was_lost_but_a_worker_holds_it_is_accepted(burst_stack):
    stack, user, template = burst_stack
    client, keys = _claims(stack)

    def worker_claims(nid: str) -> None:
        assert client.set(keys.sending(nid), "worker", nx=True, px=60_000)

    publisher = _use(stack, _Publisher(None, confirm_lost=True, after=worker_claims))
    body = send_body(user, template)
    with client:
        resp = await stack.send(**body)
        assert resp.status == 202, await resp.text()
        nid = (await resp.json())["data"]["notification_id"]
        assert publisher.published == [nid]
        assert client.get(keys.sending(nid)) == "worker"  # the worker's claim is left alone
    assert await total_for(stack, user) == 1
    assert drain_queue(stack.env["RABBITMQ_URL"]) == [nid]
    replay = await stack.send(**body)
    assert replay.status == 200
    assert (await replay.json())["data"]["notification_id"] == nid


async def test_a_send_whose_confirm_was_lost_after_a_worker_delivered_it_is_accepted(burst_stack, database_url):
    stack, user, template = burst_stack

    def worker_delivers(nid: str) -> None:
        with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("UPDATE notification_status SET status = 'delivered' WHERE notification_id = %s", (nid,))
            assert cur.rowcount == 1

    _use(stack, _Publisher(None, confirm_lost=True, after=worker_delivers))
    resp = await stack.send(**send_body(user, template))
    assert resp.status == 202, await resp.text()
    nid = (await resp.json())["data"]["notification_id"]
    read = await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth())
    assert (await read.json())["data"]["status"] == "delivered"


async def test_a_publish_outlasting_the_timeout_is_answered_by_its_confirm(burst_stack, monkeypatch):
    stack, user, template = burst_stack
    monkeypatch.setattr("web.gateway.sending.PUBLISH_TIMEOUT_S", 0.2)
    publisher = _use(stack, _Publisher(None, delay_s=0.8))
    resp = await stack.send(**send_body(user, template))
    assert resp.status == 202, await resp.text()
    nid = (await resp.json())["data"]["notification_id"]
    assert publisher.published == [nid]
    assert await total_for(stack, user) == 1
    assert drain_queue(stack.env["RABBITMQ_URL"]) == [nid]


async def test_a_send_timing_out_before_its_publish_leaves_no_row_and_no_message(
    burst_stack, database_url, monkeypatch
):
    stack, user, template = burst_stack
    monkeypatch.setattr("web.gateway.sending.PUBLISH_TIMEOUT_S", 0.3)
    publisher = _use(stack, _Publisher(None))
    locked, release = threading.Event(), threading.Event()

    def hold_the_table() -> None:  # the INSERT waits behind this lock, past the timeout
        with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute("LOCK TABLE notification_status IN SHARE ROW EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_table)
    holder.start()
    try:
        assert locked.wait(10)
        body = send_body(user, template)
        resp = await stack.send(**body)
        assert resp.status == 503, await resp.text()
    finally:
        release.set()
        holder.join(10)
    for _ in range(50):  # the flush finishes its INSERT once the lock is gone, then deletes the row
        await asyncio.sleep(0.1)
        if await total_for(stack, user) == 0 and not stack.client.app[pipeline_key].recorder._running:
            break
    assert await total_for(stack, user) == 0
    assert publisher.published == []
    assert drain_queue(stack.env["RABBITMQ_URL"]) == []
    again = await stack.send(**body)  # the 503 said "send it again": a new send, not a replay
    assert again.status == 202, await again.text()
    assert publisher.published == [(await again.json())["data"]["notification_id"]]
