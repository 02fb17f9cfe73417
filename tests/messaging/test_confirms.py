"""Publishing with pipelined confirms (``messaging/confirms.py``) against the real RabbitMQ: every
message gets its own outcome, and a channel the broker closes does not leave its connection behind
(README, "What a send does")."""

from __future__ import annotations

import asyncio
import time

import pika

from messaging.confirms import ConfirmingPublisher, NotConfirmed, Publication
from tests.support.resources import declare_topology, rabbitmqctl


def _publication(exchange: str, routing_key: str, body: bytes = b"{}") -> Publication:
    return Publication(exchange, routing_key, body, pika.BasicProperties(delivery_mode=2, message_id=body.decode()))


def _connections(vhost: str) -> int:
    out = rabbitmqctl("-q", "list_connections", "vhost")
    return sum(1 for line in out.splitlines() if line.strip() == vhost)


async def test_a_batch_is_confirmed_per_message_and_lands_once_each(rabbit_vhost):
    url, _ = rabbit_vhost
    declare_topology(url)
    publisher = ConfirmingPublisher(url, timeout_s=5)
    try:
        bodies = [f"m-{i}".encode() for i in range(500)]
        outcomes = await publisher.publish_many([_publication("", "email.queue", body) for body in bodies])
        unroutable = await publisher.publish_many([_publication("", "no-such-queue", b"lost")])
    finally:
        await publisher.close()
    assert outcomes == [None] * len(bodies)
    assert isinstance(unroutable[0], NotConfirmed) and unroutable[0].unroutable
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        assert connection.channel().queue_declare("email.queue", passive=True).method.message_count == len(bodies)
    finally:
        connection.close()


async def test_a_channel_closed_by_the_broker_is_refused_and_its_connection_closed(rabbit_vhost):
    url, vhost = rabbit_vhost
    publisher = ConfirmingPublisher(url, timeout_s=5)
    try:
        for _ in range(3):  # no such exchange: RabbitMQ closes the channel (404) after each publish
            [outcome] = await publisher.publish_many([_publication("no-such-exchange", "x")])
            assert isinstance(outcome, NotConfirmed) and not outcome.unroutable
        deadline = time.monotonic() + 10
        while _connections(vhost) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert _connections(vhost) <= 1, "one connection at most, not one per closed channel"
    finally:
        await publisher.close()
