"""Migrations on real databases: a database made before the schedule columns gets them, and a
second run applies nothing."""

from __future__ import annotations

import peewee
import pytest

from models.base import bind_databases
from models.migrations import migrate
from tests.support import resources

SCHEDULE_COLUMNS = {"send_at", "expires_at", "payload"}


@pytest.fixture
def blank_database():
    with resources.postgres_database() as url:
        dbs = bind_databases(users=url, templates=url, notifications=url)
        yield dbs
        dbs.close()


def columns(db: peewee.Database) -> set[str]:
    return {column.name for column in db.get_columns("notification_status")}


def test_a_database_from_before_the_schedule_gets_its_columns_and_index(blank_database):
    db = blank_database.notifications
    migrate(blank_database)
    # make it look like a database migrated before the schedule existed
    db.execute_sql("DROP INDEX notification_status_send_at")
    for column in SCHEDULE_COLUMNS:
        db.execute_sql(f"ALTER TABLE notification_status DROP COLUMN {column}")
    db.execute_sql("DELETE FROM herald_migrations WHERE name IN ('0005_schedule_columns', '0006_schedule_index')")
    assert not SCHEDULE_COLUMNS & columns(db)
    applied = migrate(blank_database)
    assert applied == ["notifications/0005_schedule_columns", "notifications/0006_schedule_index"]
    assert columns(db) >= SCHEDULE_COLUMNS
    assert "notification_status_send_at" in {index.name for index in db.get_indexes("notification_status")}
    assert migrate(blank_database) == []


def test_the_same_steps_run_on_sqlite(tmp_path):
    dbs = bind_databases(notifications=f"sqlite:///{tmp_path}/herald.sqlite3")
    try:
        applied = migrate(dbs)
        assert "notifications/0005_schedule_columns" in applied
        assert columns(dbs.notifications) >= SCHEDULE_COLUMNS
    finally:
        dbs.close()
