"""Events from final outcomes, on PostgreSQL and Redis: the delivery rows are written with the
outcome or not at all, published after the commit, and published again by the sweep when lost."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import peewee
import pytest
import redis

from messaging.messages import EVENT_CREATED_AT, WEBHOOK_ID
from messaging.topology import WEBHOOK_ACTOR, WEBHOOKS_QUEUE
from messaging.webhook_events import WebhookEvents
from models.base import bind_databases, utcnow
from models.dao import notifications
from models.dao import webhooks as subscriptions
from models.notification import DELIVERED, FAILED, PENDING, Notification
from models.redis_keys import RedisKeys
from models.status_writer import StatusWriter
from models.webhook import WebhookDelivery
from tests.support.resources import REDIS_URL


@pytest.fixture
def db(database_url):
    dbs = bind_databases(notifications=database_url)
    dbs.notifications.connect(reuse_if_open=True)
    yield dbs
    dbs.close()


@pytest.fixture
def writer(db, redis_prefix):
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    published: list = []
    events = WebhookEvents(publish=published.append, cache_s=0)
    writer = StatusWriter(redis=client, keys=RedisKeys(redis_prefix), listeners=[events])
    writer.published = published
    writer.events = events
    yield writer
    client.close()


def notification(**fields) -> Notification:
    now = utcnow()
    values = dict(
        notification_id=str(uuid.uuid4()),
        request_id=uuid.uuid4().hex,
        caller="apikey:1",
        user_id=uuid.uuid4(),
        template_code="welcome",
        notification_type="email",
        status=PENDING,
        mode="test",
        created_at=now,
        updated_at=now,
    )
    return Notification.create(**{**values, **fields})


def subscribe(events=None, active=True):
    hook = subscriptions.create(url="https://93.184.216.34/in", events=events, description=None, created_by="a")
    if not active:
        hook.is_active = False
        hook.save()
    return hook


def test_a_final_outcome_makes_one_delivery_per_subscription_that_wants_it(writer):
    every, delivered_only = subscribe(), subscribe(["notification.delivered"])
    subscribe(["notification.failed"])
    subscribe(active=False)
    row = notification()
    recorded = writer.record(row.notification_id, outcome="delivered", status=DELIVERED)
    made = list(WebhookDelivery.select().order_by(WebhookDelivery.created_at))
    assert {d.webhook_id for d in made} == {every.id, delivered_only.id}
    assert len({d.event_id for d in made}) == 1, "one event, one id, whoever receives it"
    body = json.loads(made[0].payload)
    assert made[0].payload == made[1].payload
    assert body == {
        "id": str(made[0].event_id),
        "type": "notification.delivered",
        "created_at": body["created_at"],
        "data": recorded.public(),
    }
    assert body["data"]["status"] == "delivered" and body["data"]["mode"] == "test"
    assert all((d.state, d.attempts, d.notification_id) == ("pending", 0, row.notification_id) for d in made)
    messages = writer.published
    assert sorted(m.args[0] for m in messages) == sorted(str(d.id) for d in made)
    for message in messages:
        assert (message.queue_name, message.actor_name) == (WEBHOOKS_QUEUE, WEBHOOK_ACTOR)
        assert message.options[WEBHOOK_ID] in {str(every.id), str(delivered_only.id)}
        assert message.options[EVENT_CREATED_AT].endswith("Z")


def test_nothing_happens_for_an_attempt_or_without_subscribers(writer):
    subscribe(["notification.failed"])
    row = notification()
    writer.record(row.notification_id, outcome="retry_scheduled", status=None, error="451")
    writer.record(row.notification_id, outcome="delivered", status=DELIVERED)
    assert WebhookDelivery.select().count() == 0 and writer.published == []
    failed = notification()
    writer.record(failed.notification_id, outcome="failed", status=FAILED, error="smtp_5xx: 550")
    [delivery] = WebhookDelivery.select()
    assert delivery.event_type == "notification.failed"
    assert json.loads(delivery.payload)["data"]["error"] == "smtp_5xx: 550"


def test_the_rows_are_written_with_the_outcome_or_not_at_all(writer):
    """The database failing while the rows are written leaves neither the rows nor the outcome: the
    caller's outage handling records both later."""
    subscribe()

    class BreaksAfterWriting:
        def wants(self, status):
            return True

        def staged(self, row):
            writer.events.staged(row)
            raise peewee.OperationalError("server closed the connection unexpectedly")

    writer.listeners = [BreaksAfterWriting()]
    row = notification()
    with pytest.raises(peewee.OperationalError):
        writer.record(row.notification_id, outcome="delivered", status=DELIVERED)
    assert notifications.get(row.notification_id).status == PENDING
    assert WebhookDelivery.select().count() == 0


def test_a_broken_listener_never_costs_the_outcome(writer):
    subscribe()

    class Buggy:
        def wants(self, status):
            return True

        def staged(self, row):
            raise RuntimeError("a bug")

    writer.listeners = [Buggy(), writer.events]
    row = notification()
    assert writer.record(row.notification_id, outcome="delivered", status=DELIVERED).status == DELIVERED
    assert WebhookDelivery.select().count() == 1 and len(writer.published) == 1


def test_a_lost_publish_is_published_again_by_the_sweep(db, redis_prefix):
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)

    def broker_away(message):
        raise ConnectionError("rabbitmq away")

    events = WebhookEvents(publish=broker_away, cache_s=0)
    writer = StatusWriter(redis=client, keys=RedisKeys(redis_prefix), listeners=[events])
    subscribe()
    row = notification()
    assert writer.record(row.notification_id, outcome="delivered", status=DELIVERED).status == DELIVERED
    [lost] = WebhookDelivery.select()
    assert lost.state == "pending"

    published = []
    sweep = WebhookEvents(publish=published.append)
    assert sweep.republish_stale(utcnow() - dt.timedelta(minutes=1), limit=10) == 0, "not stale yet"
    assert sweep.republish_stale(utcnow() + dt.timedelta(seconds=1), limit=10) == 1
    assert [m.args[0] for m in published] == [str(lost.id)]
    touched = WebhookDelivery.get_by_id(lost.id)
    assert touched.updated_at > lost.updated_at, "marked as just published, so the next sweep waits"
    client.close()


def test_an_outcome_written_by_another_query_is_told_through_announce(writer):
    subscribe()
    row = notification()
    changed = notifications.set_status(row.notification_id, status=FAILED, error="bounced")
    writer.announce(changed)
    [delivery] = WebhookDelivery.select()
    assert delivery.event_type == "notification.failed" and len(writer.published) == 1


def test_outcomes_recorded_together_each_make_their_own_event(writer):
    hook = subscribe()
    rows = [notification(), notification()]
    recorded = writer.record_many([r.notification_id for r in rows], outcome="delivered", status=DELIVERED)
    assert all(r is not None and r.status == DELIVERED for r in recorded)
    made = list(WebhookDelivery.select())
    assert len(made) == 2 and {d.webhook_id for d in made} == {hook.id}
    assert len({d.event_id for d in made}) == 2, "one event per notification"
    assert len(writer.published) == 2
