"""The queries behind the operator console, on PostgreSQL (and on SQLite, which ``make run`` uses):
the search by any id, the last hour's counts, the user listing's filters, and the migration that
adds the correlation id and template version to older databases."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from models.base import bind_databases, utcnow
from models.dao import notification_counts as counts
from models.dao import notification_search, users
from models.dao import notifications as dao
from models.migrations import migrate
from models.notification import DELIVERED, FAILED, PENDING, Notification
from tests.support.factories import notification


@pytest.fixture
def sqlite_db(tmp_path):
    url = f"sqlite:///{tmp_path}/console.sqlite3"
    dbs = bind_databases(users=url, notifications=url)
    migrate(dbs)
    yield dbs
    dbs.close()


def check_search() -> None:
    user = uuid.uuid4()
    a = notification(user_id=user, request_id="order-1")
    b = notification(user_id=user, status=DELIVERED, notification_type="push")
    other = notification(request_id=a.notification_id)  # a request id that looks like another's id

    def ids(**kw) -> set[str]:
        total, rows = notification_search.search(page=1, limit=10, **kw)
        assert total == len(rows)
        return {row.notification_id for row in rows}

    assert ids(any_id=a.notification_id) == {a.notification_id, other.notification_id}
    assert ids(any_id="order-1") == {a.notification_id}
    assert ids(any_id=str(user)) == {a.notification_id, b.notification_id}
    assert ids(user_id=str(user), status=DELIVERED) == {b.notification_id}
    assert ids(any_id=str(user), notification_type="email") == {a.notification_id}
    assert ids(any_id="nothing-like-it") == set()
    assert len(ids()) == 3


def check_counts() -> None:
    now = utcnow()
    since = now - dt.timedelta(hours=1)
    notification(created_at=since + dt.timedelta(minutes=1), status=DELIVERED)
    notification(created_at=since + dt.timedelta(minutes=2), status=FAILED)
    notification(created_at=since + dt.timedelta(minutes=7))
    notification(created_at=now - dt.timedelta(seconds=5), notification_type="push", status=DELIVERED)
    notification(created_at=since - dt.timedelta(minutes=1), status=FAILED)  # before the window
    assert counts.by_channel_and_status(since) == {
        ("email", DELIVERED): 1,
        ("email", FAILED): 1,
        ("email", PENDING): 1,
        ("push", DELIVERED): 1,
    }
    series = counts.by_interval(since, interval_s=300, count=12)
    assert series[0] == {("email", DELIVERED): 1, ("email", FAILED): 1}
    assert series[1] == {("email", PENDING): 1}
    assert series[11] == {("push", DELIVERED): 1}
    assert all(not point for point in series[2:11])


def test_search_by_any_id_on_postgresql(db):
    check_search()


def test_last_hour_counts_on_postgresql(db):
    check_counts()


def test_search_on_sqlite(sqlite_db):
    check_search()


def test_last_hour_counts_on_sqlite(sqlite_db):
    check_counts()


def test_users_are_listed_by_exact_email_or_a_search_of_email_and_name(db):
    for name, email in (("Ada Lovelace", "ada@example.com"), ("Bob 100%_", "bob@example.org"), ("Eve", "ev@ada.io")):
        users.create(name=name, email=email, password_hash="x", preferences={}, role="user")

    def emails(**kw) -> list[str]:
        total, rows = users.listing(page=1, limit=10, **kw)
        assert total == len(rows)
        return sorted(row.email for row in rows)

    assert emails(email="ADA@example.com") == ["ada@example.com"]
    assert emails(search="ADA") == ["ada@example.com", "ev@ada.io"]
    assert emails(search="lovelace") == ["ada@example.com"]
    assert emails(search="100%_") == ["bob@example.org"], "% and _ are taken literally"
    assert emails(search="%") == ["bob@example.org"]
    assert emails(search="_") == ["bob@example.org"]
    assert len(emails()) == 3


def test_migration_0007_adds_the_lineage_columns_and_the_request_id_index_to_an_older_database(db):
    database = Notification._meta.database
    database.execute_sql("DROP INDEX notification_request_id")
    for column in ("correlation_id", "template_language", "template_version"):
        database.execute_sql(f"ALTER TABLE notification_status DROP COLUMN {column}")
    database.execute_sql(
        "DELETE FROM herald_migrations WHERE name IN ('0007_notification_lineage', '0008_lineage_index')"
    )
    old = {c.name for c in database.get_columns("notification_status")}
    assert "correlation_id" not in old
    database.close()

    assert migrate(db) == ["notifications/0007_notification_lineage", "notifications/0008_lineage_index"]
    assert migrate(db) == [], "applied once"
    database.connect(reuse_if_open=True)
    columns = {c.name for c in database.get_columns("notification_status")}
    assert {"correlation_id", "template_language", "template_version"} <= columns
    assert "notification_request_id" in {i.name for i in database.get_indexes("notification_status")}
    row = notification(correlation_id="trace-1", template_language="en", template_version=3)
    assert dao.get(row.notification_id).correlation_id == "trace-1"
