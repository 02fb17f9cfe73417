"""The maintenance sweep publishes again, once, the webhook deliveries whose message was lost
(real PostgreSQL and RabbitMQ vhost)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pika
import pytest
from dramatiq.brokers.stub import StubBroker

from actors import maintenance
from actors.runtime import Runtime
from messaging.rabbitmq import HeraldBroker
from models.base import utcnow
from models.dao import webhook_deliveries as deliveries
from models.dao import webhooks
from models.webhook import SUCCEEDED, WebhookDelivery
from settings import Settings
from tests.conftest import make_env
from tests.support.resources import declare_topology


@pytest.fixture
def jobs(database_url, redis_prefix, rabbit_vhost):
    url, _ = rabbit_vhost
    declare_topology(url)
    settings = Settings.from_env(make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url))
    runtime = Runtime.from_settings(settings)
    jobs = maintenance.register(StubBroker(), runtime)
    jobs.broker = HeraldBroker(url=url, middleware=[])
    for db in runtime.databases.distinct():
        db.connect(reuse_if_open=True)
    yield jobs
    jobs.broker.close()
    runtime.databases.close()


def queued(url: str, queue: str) -> list[dict]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel, out = conn.channel(), []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        out.append(json.loads(got[2]))
    conn.close()
    return out


def test_the_lost_window_covers_the_longest_wait_and_an_attempt(jobs):
    # a wait is at most 15 minutes (a receiver's Retry-After included), an attempt 60 s, then 10 minutes
    assert jobs.webhook_lost_after() == dt.timedelta(minutes=15, seconds=60 + 600)


def test_only_deliveries_pending_and_untouched_for_long_are_published_again_and_only_once(jobs, rabbit_vhost):
    url, _ = rabbit_vhost
    hook = webhooks.create(url="https://93.184.216.34/in", events=None, description=None, created_by="a")
    row = {"webhook": hook.id, "event_type": "notification.delivered", "notification_id": "n-1", "payload": "{}"}
    lost, fresh, ended = (
        deliveries.create_many([{**row, "event_id": e}])[0] for e in (uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    )
    lost_id = str(lost.id)
    long_ago = utcnow() - dt.timedelta(hours=1)
    WebhookDelivery.update(updated_at=long_ago).where(WebhookDelivery.id.in_([lost.id, ended.id])).execute()
    WebhookDelivery.update(state=SUCCEEDED).where(WebhookDelivery.id == ended.id).execute()

    jobs.sweep_webhooks()
    [message] = queued(url, "webhooks.queue")
    assert (message["actor_name"], message["args"]) == ("deliver_webhook", [lost_id])
    assert message["options"]["webhook_id"] == str(hook.id)
    assert jobs.counters.webhooks_republished == 1
    jobs.sweep_webhooks()
    assert queued(url, "webhooks.queue") == [], "just published: the next sweep leaves it alone"
    assert deliveries.get(str(fresh.id)).state == "pending"
