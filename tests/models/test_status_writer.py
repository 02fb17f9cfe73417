"""The status writer on PostgreSQL and Redis: an outcome reaches the record and its Redis copy, and
the key it is asked to release (a send claim) goes in the same round trip, or alone when there is
nothing to record; never when the recording fails."""

from __future__ import annotations

import uuid

import peewee
import pytest
import redis

from models.base import bind_databases
from models.dao import notifications
from models.notification import CANCELLED, DELIVERED, OPEN_STATUSES
from models.redis_keys import RedisKeys
from models.status_writer import StatusWriter
from tests.support.factories import notification
from tests.support.resources import PG_URL, REDIS_URL


@pytest.fixture
def writer(database_url, redis_prefix):
    dbs = bind_databases(notifications=database_url)
    dbs.notifications.connect(reuse_if_open=True)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield StatusWriter(redis=client, keys=RedisKeys(redis_prefix))
    client.close()
    bind_databases(notifications=database_url)  # a test may have pointed it at a missing database
    dbs.close()


def claim(writer: StatusWriter, nid: str) -> str:
    key = writer.keys.sending(nid)
    assert writer.redis.set(key, "1", nx=True, px=60_000)
    return key


def test_an_outcome_is_recorded_and_mirrored_and_the_claim_released_with_it(writer):
    row = notification()
    key = claim(writer, row.notification_id)
    [recorded] = writer.record_many([row.notification_id], outcome="delivered", status=DELIVERED, release=[key])
    assert recorded is not None and recorded.status == DELIVERED
    assert notifications.status_of(row.notification_id) == DELIVERED
    mirrored = writer.redis.hgetall(writer.keys.notification(row.notification_id))
    assert mirrored["status"] == DELIVERED and mirrored["retry_count"] == "0"
    assert writer.redis.exists(key) == 0


def test_nothing_to_record_still_releases_the_claim_and_writes_no_status(writer):
    row = notification(status=CANCELLED)
    key = claim(writer, row.notification_id)
    recorded = writer.record_many(
        [row.notification_id], outcome="delivered", status=DELIVERED, only_from=OPEN_STATUSES, release=[key]
    )
    assert recorded == [None]
    assert notifications.status_of(row.notification_id) == CANCELLED
    assert writer.redis.exists(writer.keys.notification(row.notification_id)) == 0
    assert writer.redis.exists(key) == 0


def test_a_recording_that_fails_leaves_the_claim_to_its_holder(writer):
    row = notification()
    key = claim(writer, row.notification_id)
    bind_databases(notifications=PG_URL.format(name="herald_no_such_database"))  # PostgreSQL refuses
    with pytest.raises(peewee.OperationalError):
        writer.record_many([row.notification_id], outcome="delivered", status=DELIVERED, release=[key])
    assert writer.redis.get(key) == "1"
    assert writer.redis.exists(writer.keys.notification(row.notification_id)) == 0


def test_many_outcomes_in_one_call_each_row_its_own_and_every_claim_released(writer):
    first, cancelled, second = notification(), notification(status=CANCELLED), notification()
    unknown = str(uuid.uuid4())
    ids = [first.notification_id, cancelled.notification_id, unknown, second.notification_id]
    keys = [claim(writer, nid) for nid in ids]
    recorded = writer.record_many(ids, outcome="delivered", status=DELIVERED, only_from=OPEN_STATUSES, release=keys)
    assert [r.notification_id if r else None for r in recorded] == [
        first.notification_id,
        None,
        None,
        second.notification_id,
    ]
    for row in (first, second):
        assert notifications.status_of(row.notification_id) == DELIVERED
        assert writer.redis.hget(writer.keys.notification(row.notification_id), "status") == DELIVERED
        assert [a["outcome"] for a in notifications.get(row.notification_id).attempts] == ["delivered"]
    assert notifications.status_of(cancelled.notification_id) == CANCELLED
    assert writer.redis.exists(*keys) == 0
