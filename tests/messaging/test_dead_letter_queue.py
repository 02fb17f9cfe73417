"""``failed.queue`` read as a store, on a real RabbitMQ vhost: any dead letter is found by id
wherever it sits, and the ones passed on the way keep their order."""

from __future__ import annotations

import json
import uuid

import pika
import pytest

from messaging.dead_letters import DeadLetterQueue
from messaging.topology import EXCHANGE, FAILED_QUEUE, ROUTING_KEYS
from tests.support.resources import declare_topology


@pytest.fixture
def url(rabbit_vhost):
    url, _ = rabbit_vhost
    declare_topology(url)
    return url


def park(url: str, count: int) -> list[str]:
    """Publish ``count`` dead letters straight to ``failed.queue``; their notification ids, in order."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for nid in ids:
            body = {
                "queue_name": "email.queue",
                "actor_name": "send_email",
                "message_id": nid,
                "options": {},
                "args": [{"notification_id": nid, "notification_type": "email"}],
                "kwargs": {},
            }
            channel.basic_publish(
                EXCHANGE,
                ROUTING_KEYS[FAILED_QUEUE],
                json.dumps(body).encode(),
                pika.BasicProperties(delivery_mode=2, message_id=nid),
            )
    finally:
        conn.close()
    return ids


def order(url: str) -> list[str]:
    with DeadLetterQueue(url) as dlq:
        return [letter.notification_id for letter in dlq.peek(100)]


@pytest.mark.parametrize("position", [0, 2, 4])
def test_find_reaches_any_position_and_hands_the_others_back_in_order(url, position):
    ids = park(url, 5)
    with DeadLetterQueue(url) as dlq:
        letter = dlq.find(ids[position])
        assert letter is not None and letter.notification_id == ids[position]
        dlq.ack(letter)
    assert order(url) == [nid for i, nid in enumerate(ids) if i != position]


def test_find_of_an_absent_id_takes_nothing(url):
    ids = park(url, 3)
    with DeadLetterQueue(url) as dlq:
        assert dlq.find(str(uuid.uuid4())) is None
    with DeadLetterQueue(url) as dlq:  # a hand-back (nack) is not confirmed: ask once it is certain
        assert dlq.depth() == 3
    assert order(url) == ids


def test_find_stops_after_its_scan_limit(url):
    ids = park(url, 4)
    with DeadLetterQueue(url) as dlq:
        assert dlq.find(ids[3], scan=3) is None
    assert order(url) == ids
