"""API keys in PostgreSQL: shown once, stored as a hash, revoked once, last use kept to the minute;
and the migration that gives old notifications their mode."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from models import api_key
from models.base import bind_databases, utcnow
from models.dao import api_keys as dao
from models.migrations import migrate

KEY_RE = re.compile(r"hk_(live|test)_[A-Za-z0-9_-]{43,}")


@pytest.fixture
def db(database_url):
    dbs = bind_databases(users=database_url, notifications=database_url)
    for database in dbs.distinct():
        database.connect(reuse_if_open=True)
    yield dbs
    dbs.close()


def test_a_key_is_shown_once_and_only_its_hash_is_stored(db):
    row, key = dao.create(name="billing", mode="test", expires_at=None, created_by="admin-1")
    assert KEY_RE.fullmatch(key) and key.startswith("hk_test_")
    assert row.prefix == key[:12] and row.key_hash == api_key.digest(key)
    stored = db.notifications.execute_sql("SELECT * FROM api_keys WHERE id = %s", (str(row.id),)).fetchall()
    assert stored and key not in repr(stored) and key[12:] not in repr(stored)
    public = row.public()
    assert set(public) == {"id", "name", "mode", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"}
    assert dao.by_hash(api_key.digest(key)).id == row.id
    assert dao.by_hash(api_key.digest(key + "x")) is None


def test_keys_are_unique_and_listed_newest_first(db):
    made = [dao.create(name=f"k{i}", mode="live", expires_at=None, created_by=None) for i in range(3)]
    assert len({key for _, key in made}) == 3
    total, rows = dao.listing(page=1, limit=2)
    assert total == 3 and [r.name for r in rows] == ["k2", "k1"]


def test_revoking_keeps_the_first_time_and_unknown_ids_are_none(db):
    row, _ = dao.create(name="k", mode="live", expires_at=None, created_by=None)
    first = dao.revoke(str(row.id), at=utcnow() - dt.timedelta(minutes=5))
    again = dao.revoke(str(row.id))
    assert first.revoked_at is not None and again.revoked_at == first.revoked_at
    assert dao.revoke(str(uuid.uuid4())) is None


def test_last_used_is_written_at_most_once_a_minute(db):
    row, _ = dao.create(name="k", mode="live", expires_at=None, created_by=None)
    start = utcnow().replace(microsecond=0)
    assert dao.touch(str(row.id), start) == 1
    assert dao.touch(str(row.id), start + dt.timedelta(seconds=59)) == 0
    assert dao.touch(str(row.id), start + dt.timedelta(seconds=60)) == 1
    assert dao.get(str(row.id)).last_used_at == start + dt.timedelta(seconds=60)


def test_the_mode_column_is_added_to_an_existing_notifications_table(db):
    database = db.notifications
    database.execute_sql(
        "INSERT INTO notification_status (id, notification_id, request_id, caller, request_hash, "
        "user_id, template_code, notification_type, status, priority, retry_count, metadata, "
        "attempts, created_at, updated_at, mode) VALUES (gen_random_uuid(), 'old-1', 'r', 'c', '', "
        "gen_random_uuid(), 't', 'email', 'pending', 5, 0, '{}', '[]', now(), now(), 'live')"
    )
    # the table as it was before test mode, and the step not yet applied
    database.execute_sql("ALTER TABLE notification_status DROP COLUMN mode")
    database.execute_sql("DELETE FROM herald_migrations WHERE name = '0002_notification_mode'")
    assert migrate(db) == ["notifications/0002_notification_mode"]
    assert database.execute_sql("SELECT mode FROM notification_status WHERE notification_id = 'old-1'").fetchone() == (
        "live",
    )
    assert migrate(db) == []
