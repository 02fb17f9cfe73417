"""The due-time loop on real PostgreSQL, Redis and RabbitMQ: due rows are published once each,
even with thousands due at once and two loops racing; the user is read again at publish time; an
expired one ends ``expired``; nothing before its time is touched."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import pika
import pytest
from dramatiq.errors import ConnectionClosed

from actors.due_time import DueTimeLoop
from actors.runtime import Runtime
from messaging.rabbitmq import HeraldBroker
from models.base import iso, utcnow
from models.dao import notifications as dao
from models.notification import CANCELLED, EXPIRED, PENDING, SCHEDULED, Notification
from models.user import User
from settings import Settings
from tests.conftest import make_env
from tests.support.resources import declare_topology, set_queue_full


@pytest.fixture
def env(database_url, redis_prefix, rabbit_vhost):
    url, _ = rabbit_vhost
    declare_topology(url)
    return make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url)


@pytest.fixture
def runtime(env):
    runtime = Runtime.from_settings(Settings.from_env(env))
    yield runtime
    runtime.databases.close()
    runtime.status.redis.close()


@pytest.fixture
def broker(env):
    broker = HeraldBroker(url=env["RABBITMQ_URL"], middleware=[])
    yield broker
    broker.close()


class Told:
    """A status listener that writes down every final outcome it is told of."""

    def __init__(self, told: list) -> None:
        self.told = told

    def wants(self, status: str) -> bool:
        return True

    def staged(self, row):
        return lambda: self.told.append((row.notification_id, row.status))


def make_user(runtime, **fields) -> User:
    values = dict(
        name="Ada",
        email=f"{uuid.uuid4().hex[:10]}@example.com",
        password_hash="x",
        preferences={"email": True, "push": True},
    )
    with runtime.databases.users.connection_context():
        return User.create(**{**values, **fields})


def schedule(runtime, user: User, count: int, *, send_at=None, expires_at=None, channel="email") -> list[str]:
    """Rows as the gateway records a scheduled send: status ``scheduled`` with the message's body."""
    now = utcnow()
    send_at = send_at or now - dt.timedelta(seconds=1)
    rows = []
    for _ in range(count):
        nid = str(uuid.uuid4())
        body = {
            "notification_id": nid,
            "notification_type": channel,
            "user_id": str(user.id),
            "user_email": "stale@example.com",
            "user_push_token": None,
            "template_code": "welcome",
            "variables": {},
            "request_id": nid,
            "priority": 5,
            "metadata": {},
            "retry_count": 0,
            "created_at": iso(now),
            "expires_at": iso(expires_at),
            "template": {"language": "en", "version": 1, "subject": "Hi", "content": "<p>Hi</p>"},
        }
        rows.append(
            dict(
                notification_id=nid,
                request_id=nid,
                caller="test",
                request_hash="",
                user_id=str(user.id),
                template_code="welcome",
                notification_type=channel,
                status=SCHEDULED,
                priority=5,
                metadata={},
                send_at=send_at,
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
                payload={"body": body, "correlation_id": f"cid-{nid}"},
            )
        )
    with runtime.databases.notifications.connection_context():
        dao.create_many(rows)
    return [row["notification_id"] for row in rows]


def drain(url: str, queue: str = "email.queue") -> list[tuple[dict, pika.BasicProperties]]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    out = []
    try:
        channel = conn.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((json.loads(body), props))
    finally:
        conn.close()


def statuses(runtime, ids: list[str]) -> dict[str, str]:
    with runtime.databases.notifications.connection_context():
        rows = Notification.select().where(Notification.notification_id.in_(ids))
        return {row.notification_id: row.status for row in rows}


def test_a_due_notification_is_published_with_the_user_read_again(runtime, broker, env):
    user = make_user(runtime)
    [nid] = schedule(runtime, user, 1)
    [later] = schedule(runtime, user, 1, send_at=utcnow() + dt.timedelta(hours=1))
    loop = DueTimeLoop(runtime=runtime, publish_many=broker.enqueue_many)
    assert loop.run_once() == 1
    [(message, props)] = drain(env["RABBITMQ_URL"])
    body = message["args"][0]
    assert body["notification_id"] == nid and body["user_email"] == user.email, "the address of now, not then"
    assert props.correlation_id == f"cid-{nid}" and props.priority == 5
    assert statuses(runtime, [nid, later]) == {nid: PENDING, later: SCHEDULED}
    redis_status = runtime.status.redis.hget(runtime.status.keys.notification(nid), "status")
    assert redis_status == PENDING
    assert loop.run_once() == 0, "published once"


def test_the_user_is_checked_again_and_an_expired_one_ends_expired(runtime, broker, env):
    inactive = make_user(runtime, is_active=False)
    email_off = make_user(runtime, preferences={"email": False, "push": True})
    fine = make_user(runtime)
    ids = {
        "inactive": schedule(runtime, inactive, 1)[0],
        "email_off": schedule(runtime, email_off, 1)[0],
        "expired": schedule(runtime, fine, 1, expires_at=utcnow() - dt.timedelta(milliseconds=1))[0],
        "push_without_token": schedule(runtime, fine, 1, channel="push")[0],
    }
    told: list[tuple[str, str]] = []
    runtime.status.listeners.append(Told(told))
    ended: list[tuple[str, str]] = []
    DueTimeLoop(runtime=runtime, publish_many=broker.enqueue_many, ended=lambda c, s: ended.append((c, s))).run_once()
    assert drain(env["RABBITMQ_URL"]) == [] and drain(env["RABBITMQ_URL"], "push.queue") == []
    with runtime.databases.notifications.connection_context():
        rows = {name: dao.get(nid) for name, nid in ids.items()}
    assert {name: row.status for name, row in rows.items()} == {
        "inactive": CANCELLED,
        "email_off": CANCELLED,
        "expired": EXPIRED,
        "push_without_token": CANCELLED,
    }
    assert "deactivated" in rows["inactive"].error and "turned email notifications off" in rows["email_off"].error
    assert rows["expired"].error and rows["expired"].retry_count == 0
    assert sorted(told) == sorted((row.notification_id, row.status) for row in rows.values()), "webhooks hear"
    assert sorted(ended) == sorted(
        [("email", CANCELLED), ("email", CANCELLED), ("email", EXPIRED), ("push", CANCELLED)]
    )


def test_thousands_due_at_once_are_published_once_each_by_racing_loops(runtime, env, database_url):
    user = make_user(runtime)
    ids = schedule(runtime, user, 2000)
    settings = Settings.from_env(env)
    errors: list[BaseException] = []

    def run() -> None:
        # a second process: its own connections (peewee's are per thread) and broker (channel)
        own = Runtime.from_settings(settings)
        broker = HeraldBroker(url=env["RABBITMQ_URL"], middleware=[])
        try:
            loop = DueTimeLoop(runtime=own, publish_many=broker.enqueue_many)
            while loop.run_once():
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            broker.close()  # the databases are the fixture's (one pool per URL), closed with it

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    published = [message["args"][0]["notification_id"] for message, _ in drain(env["RABBITMQ_URL"])]
    assert len(published) == len(ids) and set(published) == set(ids), "each exactly once"
    assert set(statuses(runtime, ids).values()) == {PENDING}


def test_a_pass_whose_publishes_are_refused_leaves_its_rows_scheduled_for_the_next(runtime, broker, env, rabbit_vhost):
    """The confirms of a pass are awaited before its rows are marked: RabbitMQ refusing them (a full
    queue nacks) rolls the pass back, and the next pass publishes them."""
    user = make_user(runtime)
    ids = schedule(runtime, user, 3)
    loop = DueTimeLoop(runtime=runtime, publish_many=broker.enqueue_many)
    _, vhost = rabbit_vhost
    set_queue_full(vhost, True)
    try:
        with pytest.raises(ConnectionClosed):
            loop.run_once()
        assert set(statuses(runtime, ids).values()) == {SCHEDULED}
    finally:
        set_queue_full(vhost, False)
    assert loop.run_once() == 3
    published = [message["args"][0]["notification_id"] for message, _ in drain(env["RABBITMQ_URL"])]
    assert sorted(published) == sorted(ids)
    assert set(statuses(runtime, ids).values()) == {PENDING}
