"""Messages that end in ``failed.queue`` with a reason.

* TTL expiry: a message that expires in ``email.queue`` is dead-lettered by RabbitMQ to
  ``failed.queue`` with ``x-death`` reason ``expired``. The queue's own TTL is 24 h (README,
  "Deploying"), so the message carries a short per-message ``expiration``; nothing consumes the
  queue, in a vhost of its own whose topology Herald's broker declares.
* A permanent error (SMTP 550) ending in ``failed.queue`` with its reason and the status ``failed``
  with the error is covered, on a real worker process and SMTP server, by
  ``tests/e2e/test_retries.py::test_smtp_550_fails_at_once_without_retries`` and
  ``tests/e2e/test_delivery.py::test_smtp_bounce_fails_at_once_into_the_dead_letter_queue``.
"""

from __future__ import annotations

import json
import time
import uuid

import pika

from messaging.topology import EMAIL_QUEUE, EXCHANGE, FAILED_QUEUE, ROUTING_KEYS
from tests.support.resources import declare_topology


def test_a_message_expiring_in_the_email_queue_ends_in_the_failed_queue_as_expired(rabbit_vhost):
    url, _ = rabbit_vhost
    declare_topology(url)
    nid = str(uuid.uuid4())
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            EXCHANGE,
            ROUTING_KEYS[EMAIL_QUEUE],
            json.dumps({"notification_id": nid}).encode(),
            pika.BasicProperties(
                delivery_mode=2, priority=5, message_id=nid, expiration="200", content_type="application/json"
            ),
            mandatory=True,
        )
        deadline = time.monotonic() + 15
        while True:
            method, properties, body = channel.basic_get(FAILED_QUEUE)
            if method is not None:
                break
            assert time.monotonic() < deadline, "the expired message never reached failed.queue"
            time.sleep(0.1)
        channel.basic_ack(method.delivery_tag)
        email_depth = channel.queue_declare(EMAIL_QUEUE, passive=True).method.message_count
    finally:
        conn.close()
    assert properties.message_id == nid and json.loads(body) == {"notification_id": nid}
    [death] = properties.headers["x-death"]
    assert death["reason"] == "expired" and death["queue"] == EMAIL_QUEUE and death["count"] == 1
    assert properties.headers["x-first-death-reason"] == "expired"
    assert email_depth == 0
