"""Queries on NOTIFICATION_STATUS; nothing outside ``models/dao`` builds a notification query (the
listings are in :mod:`models.dao.notification_search`, the counts of the operator console's
overview in :mod:`models.dao.notification_counts`).

PostgreSQL is the record (history, attempts, listing); :mod:`models.status_writer` mirrors each
change to the Redis hash.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import peewee
from psycopg2.extras import execute_values

from models.base import iso, utcnow
from models.notification import (
    DELIVERED,
    ERROR_STATUSES,
    LIVE,
    NOT_ATTEMPTS,
    PENDING,
    PUBLISHED,
    RECEIPT,
    REPLAYED,
    SCHEDULED,
    Notification,
)

log = logging.getLogger(__name__)


def transaction():
    """A transaction on the notifications database, for a unit of several queries."""
    return Notification._meta.database.atomic()


#: The columns a new notification is inserted with, and the SQL type each value is cast to.
_INSERT_COLUMNS = {
    "notification_id": "text",
    "request_id": "text",
    "caller": "text",
    "request_hash": "text",
    "user_id": "uuid",
    "template_code": "text",
    "notification_type": "text",
    "status": "text",
    "priority": "smallint",
    "mode": "text",
    "metadata": "jsonb",
    "correlation_id": "text",
    "template_language": "text",
    "template_version": "int",
    "send_at": "timestamp",
    "expires_at": "timestamp",
    "payload": "jsonb",
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
_INSERT_SQL = (
    f"INSERT INTO notification_status (id, retry_count, attempts, {', '.join(_INSERT_COLUMNS)}) VALUES %s "  # noqa: S608 - fixed names
    "ON CONFLICT (caller, request_id) DO NOTHING RETURNING notification_id"
)
_INSERT_ROW = "(gen_random_uuid(), 0, '[]'::jsonb, " + ", ".join(f"%s::{t}" for t in _INSERT_COLUMNS.values()) + ")"


#: Values a row may leave out (the column's own default would not apply to an explicit NULL).
_INSERT_DEFAULTS = {"mode": LIVE}


def _insert_value(row: dict[str, Any], column: str) -> Any:
    value = row.get(column, _INSERT_DEFAULTS.get(column))
    return json.dumps(value) if _INSERT_COLUMNS[column] == "jsonb" and value is not None else value


def create_many(rows: list[dict[str, Any]]) -> set[str]:
    """Insert new notifications; the ids of those inserted. A row whose (caller, request_id) is
    taken already is skipped, not an error: that request was accepted before.

    On PostgreSQL, one autocommitted statement for the whole batch, its values bound by psycopg2
    rather than composed by peewee (whose per-value SQL building cost more than the round trip on
    the gateway's hot path).
    """
    db = Notification._meta.database
    if _on_postgres(db):
        values = [tuple(_insert_value(row, column) for column in _INSERT_COLUMNS) for row in rows]
        with peewee.__exception_wrapper__:
            cursor = db.cursor()
            returned = execute_values(
                cursor, _INSERT_SQL, values, template=_INSERT_ROW, page_size=len(values), fetch=True
            )
        return {notification_id for (notification_id,) in returned}
    inserted = set()
    for row in rows:
        try:
            Notification.create(**row)
        except peewee.IntegrityError:
            continue
        inserted.add(row["notification_id"])
    return inserted


def delete_many(notification_ids: list[str]) -> None:
    Notification.delete().where(Notification.notification_id.in_(notification_ids)).execute()


def withdraw_many(notification_ids: list[str]) -> set[str]:
    """Delete the rows among these that are still ``pending``, and return their ids: the gateway
    withdrawing sends whose publish was not confirmed. A row a worker has moved on (delivered,
    failed, expired) stays: its message did reach a queue, so the send was accepted after all."""
    with transaction():
        query = Notification.select(Notification.notification_id).where(
            Notification.notification_id.in_(notification_ids), Notification.status == PENDING
        )
        if _on_postgres(Notification._meta.database):
            query = query.for_update()
        open_ids = [str(nid) for (nid,) in query.tuples()]
        if open_ids:
            Notification.delete().where(Notification.notification_id.in_(open_ids)).execute()
    return set(open_ids)


def _on_postgres(db) -> bool:
    return isinstance(db.obj if hasattr(db, "obj") else db, peewee.PostgresqlDatabase)


def get(notification_id: str) -> Notification | None:
    return Notification.get_or_none(Notification.notification_id == notification_id)


_STATUS_SQL = "SELECT status FROM notification_status WHERE notification_id = {param}"


def status_of(notification_id: str) -> str | None:
    """The status alone, ``None`` for no such notification: the workers' check before every send,
    which need not load and decode the row's attempts, metadata and payload. Fixed SQL, not a peewee
    query: building the query cost four times the database's own time for it."""
    db = Notification._meta.database
    found = db.execute_sql(_STATUS_SQL.format(param=db.param), (notification_id,)).fetchone()
    return found[0] if found else None


def _returned(cursor) -> Notification | None:
    """The row an ``UPDATE ... RETURNING`` gave, built as peewee builds a row (each column through
    its field's ``python_value``) but without ``Model.raw``'s per-query column resolution, which
    cost the workers a third of their recording call."""
    values = cursor.fetchone()
    if values is None:
        return None
    columns = Notification._meta.columns
    data = {}
    for description, value in zip(cursor.description, values, strict=True):
        field = columns[description[0]]
        data[field.name] = value if value is None else field.python_value(value)
    row = Notification(__no_default__=1, **data)
    row._dirty.clear()
    return row


def get_by_request(caller: str, request_id: str) -> Notification | None:
    return Notification.get_or_none((Notification.caller == caller) & (Notification.request_id == request_id))


_RECORD_SQL = """
WITH new AS (SELECT %s::jsonb AS attempt, %s::timestamp AS at, %s::text AS status, %s::text AS error)
UPDATE notification_status AS n SET
    attempts = n.attempts || new.attempt,
    retry_count = GREATEST(0, (SELECT count(*) FROM jsonb_array_elements(n.attempts || new.attempt) AS a
                               WHERE a->>'outcome' NOT IN %s) - 1),
    updated_at = new.at,
    status = COALESCE(new.status, n.status),
    error = CASE WHEN new.status IS NULL THEN n.error WHEN new.status = ANY(%s) THEN new.error ELSE NULL END,
    delivered_at = CASE WHEN new.status = 'delivered' THEN new.at ELSE n.delivered_at END
FROM new
WHERE n.notification_id = ANY(%s::text[]) AND (%s::text[] IS NULL OR n.status = ANY(%s::text[]))
RETURNING n.*
"""


def record_attempt(
    notification_id: str,
    *,
    outcome: str,
    error: str | None = None,
    status: str | None = None,
    at: dt.datetime | None = None,
    only_from: tuple[str, ...] | None = None,
) -> Notification | None:
    """Append an attempt to the history and, when given, move the status; returns the row, or
    ``None`` when there is no such notification or its status is not one of ``only_from``."""
    found = record_attempts([notification_id], outcome=outcome, error=error, status=status, at=at, only_from=only_from)
    return found.get(notification_id)


def record_attempts(
    notification_ids: list[str],
    *,
    outcome: str,
    error: str | None = None,
    status: str | None = None,
    at: dt.datetime | None = None,
    only_from: tuple[str, ...] | None = None,
) -> dict[str, Notification]:
    """:func:`record_attempt` for many notifications at once, the rows recorded by id.

    On PostgreSQL this is one UPDATE (the append is atomic, so a redelivery racing the original
    cannot lose an attempt, and ``only_from`` is judged on the row as it is) and one round trip, on
    the workers' hot path: a statement's fixed cost is several times a row's, so the workers record
    many deliveries with one (:mod:`models.group_commit`). ``retry_count`` is derived: attempts made
    minus one, receipts not counted.
    """
    at = at or utcnow()
    attempt = {"time": iso(at), "outcome": outcome, "error": error}
    db = Notification._meta.database
    if _on_postgres(db):
        allowed = list(only_from) if only_from is not None else None
        params = (
            json.dumps([attempt]),
            at,
            status,
            error,
            NOT_ATTEMPTS,
            list(ERROR_STATUSES),
            list(notification_ids),
            allowed,
            allowed,
        )
        cursor = db.execute_sql(_RECORD_SQL, params)
        return {row.notification_id: row for row in iter(lambda: _returned(cursor), None)}
    found = {}
    with db.atomic():
        for notification_id in notification_ids:
            row = _locked(notification_id)
            if row is None or (only_from is not None and row.status not in only_from):
                continue
            row.attempts = [*(row.attempts or []), attempt]
            row.retry_count = max(0, sum(1 for a in row.attempts if a["outcome"] not in NOT_ATTEMPTS) - 1)
            row.updated_at = at
            if status is not None:
                row.status = status
                row.error = error if status in ERROR_STATUSES else None
                if status == DELIVERED:
                    row.delivered_at = at
            row.save()
            found[notification_id] = row
    return found


def set_status(
    notification_id: str, *, status: str, error: str | None = None, at: dt.datetime | None = None
) -> Notification | None:
    """A status set from outside the pipeline (a provider receipt or an operator's replay)."""
    return record_attempt(notification_id, outcome=RECEIPT, error=error, status=status, at=at)


def _locked(notification_id: str) -> Notification | None:
    """The row, locked against a concurrent receipt or worker write where the database can lock."""
    query = Notification.select().where(Notification.notification_id == notification_id)
    if _on_postgres(Notification._meta.database):
        query = query.for_update()
    return query.first()


def mark_replayed(notification_id: str) -> Notification | None:
    """Status back to ``pending``, error cleared, a ``replayed`` entry in the history.

    ``retry_count`` is left as it is: it counts retries made, and the replay is not one.
    """
    with transaction():
        row = _locked(notification_id)
        if row is None:
            return None
        now = utcnow()
        row.attempts = [*(row.attempts or []), {"time": iso(now), "outcome": REPLAYED, "error": None}]
        row.status, row.error, row.updated_at = PENDING, None, now
        row.save()
        return row


def unmark_replayed(notification_id: str, status: str, error: str | None) -> Notification | None:
    """Undo :func:`mark_replayed` after a publish the broker did not confirm."""
    with transaction():
        row = _locked(notification_id)
        if row is None:
            return None
        attempts = list(row.attempts or [])
        if attempts and attempts[-1].get("outcome") == REPLAYED:
            attempts.pop()
        row.attempts, row.status, row.error, row.updated_at = attempts, status, error, utcnow()
        row.save()
        return row


def pending_since(cutoff: dt.datetime, *, sample: int) -> tuple[int, list[str]]:
    """How many notifications are ``pending`` and untouched since ``cutoff``, and the ids of the
    ``sample`` oldest (the maintenance job's "pending too long" report)."""
    query = Notification.select(Notification.notification_id).where(
        (Notification.status == PENDING) & (Notification.updated_at < cutoff)
    )
    count = query.count()
    ids = [row.notification_id for row in query.order_by(Notification.updated_at).limit(sample)]
    return count, ids


def due(now: dt.datetime, *, limit: int) -> list[Notification]:
    """Scheduled notifications whose ``send_at`` has come, oldest first, locked for this transaction.

    ``FOR UPDATE SKIP LOCKED`` lets several due-time loops share the work: each takes rows no other
    holds, so each notification is published by one of them (README, "Scheduling, expiry,
    cancelling"). Call inside :func:`transaction`.
    """
    query = (
        Notification.select()
        .where((Notification.status == SCHEDULED) & (Notification.send_at <= now))
        .order_by(Notification.send_at)
        .limit(limit)
    )
    if _on_postgres(Notification._meta.database):
        query = query.for_update("FOR UPDATE SKIP LOCKED")
    return list(query)


_PUBLISHED_SQL = """
UPDATE notification_status SET status = %s, updated_at = %s, attempts = attempts || %s::jsonb
WHERE notification_id = ANY(%s) AND status = %s
RETURNING *
"""


def mark_published(notification_ids: list[str], at: dt.datetime) -> list[Notification]:
    """``scheduled`` -> ``pending`` for the notifications just published, with a ``published`` entry
    in their history, in one statement; the rows as they are now."""
    if not notification_ids:
        return []
    entry = [{"time": iso(at), "outcome": PUBLISHED, "error": None}]
    if _on_postgres(Notification._meta.database):
        return list(Notification.raw(_PUBLISHED_SQL, PENDING, at, json.dumps(entry), notification_ids, SCHEDULED))
    changed = []
    rows = Notification.select().where(
        Notification.notification_id.in_(notification_ids) & (Notification.status == SCHEDULED)
    )
    for row in rows:
        row.attempts, row.status, row.updated_at = [*(row.attempts or []), *entry], PENDING, at
        row.save()
        changed.append(row)
    return changed
