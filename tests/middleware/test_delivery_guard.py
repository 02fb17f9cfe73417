"""The delivery guard's checks before a send, on the real PostgreSQL and Redis with dramatiq's
StubBroker and a real Worker: whatever stops a check (a store away, the claim held elsewhere with
no way to wait, a defect), the actor does not run. dramatiq logs an exception from a before hook
and runs the actor anyway; these pin that the guard never lets one through."""

from __future__ import annotations

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker

from messaging.messages import PROVIDER_ACCEPTED
from middleware.dead_letter import DeadLetter
from middleware.delivery_guard import DeliveryGuard
from middleware.outage import OUTAGE_DELAY_MS, OutageDelay
from models.base import bind_databases
from models.dao import notifications
from models.notification import DELIVERED
from models.redis_keys import RedisKeys
from models.status_writer import StatusWriter
from tests.support.factories import notification
from tests.support.ports import free_port
from tests.support.resources import PG_URL, REDIS_URL


@pytest.fixture
def row(database_url):
    dbs = bind_databases(notifications=database_url)
    made = notification()
    yield made
    bind_databases(notifications=database_url)
    dbs.close()


@pytest.fixture
def client():
    made = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield made
    made.close()


class Run:
    """One message through DeliveryGuard, DeadLetter and OutageDelay (the stack's order) on a real
    Worker; delayed re-publishes are recorded, not run, or refused when ``refuse_waits``."""

    def __init__(self, status: StatusWriter, *, refuse_waits: bool = False) -> None:
        self.status = status
        self.sent: list[str] = []
        self.waits: list[int] = []
        self.broker = StubBroker(
            middleware=[DeliveryGuard(status=status, claim_ms=60_000), DeadLetter(status=status), OutageDelay()]
        )
        self.broker.emit_after("process_boot")
        enqueue = self.broker.enqueue

        def spy(message, *, delay=None):
            if delay is None:
                return enqueue(message)
            if refuse_waits:
                raise ConnectionError("the broker refused the publish")
            self.waits.append(delay)
            return message

        self.broker.enqueue = spy

        @dramatiq.actor(broker=self.broker, actor_name="send_email", queue_name="email.queue")
        def send_email(notification):
            self.sent.append(notification["notification_id"])

        self.actor = send_email

    def __call__(self, nid: str, **options) -> None:
        message = self.actor.message_with_options(args=({"notification_id": nid},), **options)
        self.broker.enqueue(message)
        worker = dramatiq.Worker(self.broker, worker_timeout=10)
        worker.start()
        try:
            self.broker.join("email.queue", fail_fast=False)
            worker.join()
        finally:
            worker.stop()


def test_redis_away_at_the_claim_delays_the_message_and_sends_nothing(row, redis_prefix):
    away = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=0.2)
    run = Run(StatusWriter(redis=away, keys=RedisKeys(redis_prefix)))
    run(row.notification_id)
    assert run.sent == []
    assert run.waits == [OUTAGE_DELAY_MS]
    assert run.broker.dead_letters == []


def test_postgres_away_at_the_status_check_of_a_record_only_copy_sends_nothing(row, client, redis_prefix):
    status = StatusWriter(redis=client, keys=RedisKeys(redis_prefix))
    run = Run(status)
    bind_databases(notifications=PG_URL.format(name="herald_no_such_database"))
    run(row.notification_id, **{PROVIDER_ACCEPTED: True})
    assert run.sent == [], "a mail the provider took is never sent again"
    assert run.waits == [OUTAGE_DELAY_MS]
    assert client.exists(status.keys.sending(row.notification_id)) == 0, "the claim is given back"


def test_a_claim_held_elsewhere_with_no_way_to_wait_dead_letters_the_message_unsent(row, client, redis_prefix):
    status = StatusWriter(redis=client, keys=RedisKeys(redis_prefix))
    client.set(status.keys.sending(row.notification_id), "another worker", px=60_000)
    run = Run(status, refuse_waits=True)
    run(row.notification_id)
    assert run.sent == []
    assert len(run.broker.dead_letters) == 1
    assert client.get(status.keys.sending(row.notification_id)) == "another worker", "not taken from its holder"


class BrokenStatus(StatusWriter):
    def current_status(self, notification_id):
        raise ValueError("a defect in the check")


def test_a_defect_in_the_checks_dead_letters_the_message_unsent(row, client, redis_prefix):
    run = Run(BrokenStatus(redis=client, keys=RedisKeys(redis_prefix)))
    run(row.notification_id)
    assert run.sent == []
    assert len(run.broker.dead_letters) == 1


def test_checks_that_pass_send_once_and_record_delivered(row, client, redis_prefix):
    status = StatusWriter(redis=client, keys=RedisKeys(redis_prefix))
    run = Run(status)
    run(row.notification_id)
    assert run.sent == [row.notification_id]
    assert notifications.status_of(row.notification_id) == DELIVERED
    assert client.exists(status.keys.sending(row.notification_id)) == 0
