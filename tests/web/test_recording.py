"""Bursts of sends, recorded and published in batches (``web/gateway/recorder.py``): each accepted
send has exactly one row and exactly one message on ``email.queue``, and its idempotent response is
stored, whatever batch it shared. Read back from PostgreSQL, RabbitMQ and Redis themselves."""

from __future__ import annotations

import asyncio

import pika
import redis

from models.redis_keys import RedisKeys
from tests.support import resources
from tests.support.resources import set_queue_full
from tests.support.sends import drain_queue, send_body, total_for

BURST = 40


async def test_a_burst_is_recorded_and_published_once_per_send(burst_stack):
    stack, user, template = burst_stack
    bodies = [send_body(user, template) for _ in range(BURST)]
    responses = await asyncio.gather(*(stack.send(**body) for body in bodies))
    assert [r.status for r in responses] == [202] * BURST
    accepted = [(await r.json())["data"]["notification_id"] for r in responses]
    assert len(set(accepted)) == BURST

    assert await total_for(stack, user) == BURST
    assert sorted(drain_queue(stack.env["RABBITMQ_URL"])) == sorted(accepted)
    # Each idempotent response was stored by its batch: a repeat is a replay of the same send.
    replays = await asyncio.gather(*(stack.send(**body) for body in bodies))
    assert [r.status for r in replays] == [200] * BURST
    assert [(await r.json())["data"]["notification_id"] for r in replays] == accepted
    assert drain_queue(stack.env["RABBITMQ_URL"]) == []


async def test_a_send_whose_idempotency_key_was_lost_is_answered_from_its_row_inside_a_burst(burst_stack):
    stack, user, template = burst_stack
    first_body = send_body(user, template)
    first = await stack.send(**first_body)
    assert first.status == 202
    first_id = (await first.json())["data"]["notification_id"]
    assert drain_queue(stack.env["RABBITMQ_URL"]) == [first_id]
    # Redis lost the key (a restart without persistence); the row still remembers the request.
    keys = RedisKeys(stack.env["REDIS_KEY_PREFIX"])
    with redis.Redis.from_url(resources.REDIS_URL) as client:
        assert client.delete(keys.request(stack.caller, first_body["request_id"])) == 1

    others = [send_body(user, template) for _ in range(BURST - 1)]
    responses = await asyncio.gather(*(stack.send(**body) for body in [*others[:20], first_body, *others[20:]]))
    statuses = [r.status for r in responses]
    assert statuses == [202] * 20 + [200] + [202] * (BURST - 21), statuses
    ids = [(await r.json())["data"]["notification_id"] for r in responses]
    assert ids[20] == first_id
    assert await total_for(stack, user) == BURST
    assert sorted(drain_queue(stack.env["RABBITMQ_URL"])) == sorted(ids[:20] + ids[21:])


async def test_refused_publishes_in_a_burst_leave_no_row_and_may_be_sent_again(burst_stack, rabbit_vhost):
    stack, user, template = burst_stack
    _, vhost = rabbit_vhost
    bodies = [send_body(user, template) for _ in range(12)]
    set_queue_full(vhost, True)
    refused = await asyncio.gather(*(stack.send(**body) for body in bodies))
    assert [r.status for r in refused] == [503] * len(bodies)
    assert {(await r.json())["error"] for r in refused} == {"SERVICE_UNAVAILABLE"}
    assert await total_for(stack, user) == 0
    assert drain_queue(stack.env["RABBITMQ_URL"]) == []

    set_queue_full(vhost, False)
    again = await asyncio.gather(*(stack.send(**body) for body in bodies))
    assert [r.status for r in again] == [202] * len(bodies)
    ids = [(await r.json())["data"]["notification_id"] for r in again]
    assert await total_for(stack, user) == len(bodies)
    assert sorted(drain_queue(stack.env["RABBITMQ_URL"])) == sorted(ids)


async def test_a_publisher_shutting_down_refuses_each_message_of_a_batch():
    """Publishes still queued when the gateway stops are refused (their rows are then deleted and
    the callers told 503), never reported as published."""
    from dramatiq.brokers.stub import StubBroker

    from web.gateway.publisher import Publisher, PublishError

    broker = StubBroker()
    broker.declare_queue("email.queue")
    publisher = Publisher(broker=broker)
    body = {"notification_id": "n-1", "notification_type": "email", "priority": 5}
    message = publisher.message(body=body, correlation_id="c")
    assert await publisher.publish_many([message]) == [None]
    publisher.executor.shutdown(wait=True)
    outcomes = await publisher.publish_many([message, message])
    assert [type(outcome) for outcome in outcomes] == [PublishError, PublishError]
    assert broker.queues["email.queue"].qsize() == 1


async def test_a_send_whose_queue_was_deleted_is_published_once_the_queue_is_declared_again(burst_stack):
    """Sends go out on a channel with pipelined confirms; one that comes back unroutable (an
    operator deleted the queue) is published again through the broker, which declares the queue
    first, so the caller still gets 202 and the message is on the queue, once."""
    stack, user, template = burst_stack
    url = stack.env["RABBITMQ_URL"]
    first = await stack.send(**send_body(user, template))
    assert first.status == 202
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_delete("email.queue")
    finally:
        connection.close()
    resp = await stack.send(**send_body(user, template))
    assert resp.status == 202, await resp.text()
    nid = (await resp.json())["data"]["notification_id"]
    assert drain_queue(url) == [nid]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        declared = connection.channel().queue_declare("email.queue", passive=True)
        assert declared.method.message_count == 0
    finally:
        connection.close()
