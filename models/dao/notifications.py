"""Queries on NOTIFICATION_STATUS, and the Redis status hash that mirrors it.

PostgreSQL is the record (history, attempts, listing); the Redis hash ``notification:<id>`` is
the fast copy the design keeps for seven days. Both are written through :class:`StatusWriter`
(workers, synchronous) or :func:`status_hash` (gateway, asynchronous), so their shape is defined
once here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import peewee
import redis.exceptions
from psycopg2.extras import execute_values

from models.base import iso, utcnow
from models.keys import STATUS_TTL_S, Keys
from models.notification import DELIVERED, FAILED, PENDING, Notification

log = logging.getLogger(__name__)


def status_hash(*, notification_id: str, status: str, created_at: str, updated_at: str,
                error: str | None = None, retry_count: int = 0) -> dict[str, str]:
    """The Redis hash fields of a notification's status (design, Redis data model)."""
    return {
        "notification_id": notification_id,
        "status": status,
        "created_at": created_at,
        "updated_at": updated_at,
        "error": error or "",
        "retry_count": str(retry_count),
    }


def transaction():
    """A transaction on the notifications database, for a unit of several queries."""
    return Notification._meta.database.atomic()


_INSERT_SQL = (
    "INSERT INTO notification_status (id, notification_id, request_id, caller, request_hash, user_id, "
    "template_code, notification_type, status, priority, retry_count, metadata, attempts, created_at, updated_at) "
    "VALUES %s ON CONFLICT (caller, request_id) DO NOTHING RETURNING notification_id"
)
_INSERT_ROW = "(gen_random_uuid(), %s, %s, %s, %s, %s::uuid, %s, %s, %s, %s, 0, %s::jsonb, '[]'::jsonb, %s, %s)"
_INSERT_FIELDS = ("notification_id", "request_id", "caller", "request_hash", "user_id", "template_code",
                  "notification_type", "status", "priority")


def create_many(rows: list[dict[str, Any]]) -> set[str]:
    """Insert new notifications; the ids of those inserted. A row whose (caller, request_id) is
    taken already is skipped, not an error: that request was accepted before.

    On PostgreSQL, one autocommitted statement for the whole batch, its values bound by psycopg2
    rather than composed by peewee (whose per-value SQL building cost more than the round trip on
    the gateway's hot path).
    """
    db = Notification._meta.database
    if _on_postgres(db):
        values = [(*(row[name] for name in _INSERT_FIELDS), json.dumps(row["metadata"]),
                   row["created_at"], row["updated_at"]) for row in rows]
        with peewee.__exception_wrapper__:
            cursor = db.cursor()
            returned = execute_values(cursor, _INSERT_SQL, values, template=_INSERT_ROW,
                                      page_size=len(values), fetch=True)
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


def _on_postgres(db) -> bool:
    return isinstance(db.obj if hasattr(db, "obj") else db, peewee.PostgresqlDatabase)


def get(notification_id: str) -> Notification | None:
    return Notification.get_or_none(Notification.notification_id == notification_id)


def get_by_request(caller: str, request_id: str) -> Notification | None:
    return Notification.get_or_none((Notification.caller == caller) & (Notification.request_id == request_id))


def listing(*, user_id: str | None, status: str | None, notification_type: str | None, page: int,
            limit: int) -> tuple[int, list[Notification]]:
    query = Notification.select()
    if user_id:
        query = query.where(Notification.user_id == user_id)
    if status:
        query = query.where(Notification.status == status)
    if notification_type:
        query = query.where(Notification.notification_type == notification_type)
    total = query.count()
    rows = list(query.order_by(Notification.created_at.desc(), Notification.id)
                .paginate(page, limit))
    return total, rows


_RECORD_SQL = """
WITH new AS (SELECT %s::jsonb AS attempt, %s::timestamp AS at, %s::text AS status, %s::text AS error)
UPDATE notification_status AS n SET
    attempts = n.attempts || new.attempt,
    retry_count = GREATEST(0, (SELECT count(*) FROM jsonb_array_elements(n.attempts || new.attempt) AS a
                               WHERE a->>'outcome' NOT IN ('receipt', 'replayed')) - 1),
    updated_at = new.at,
    status = COALESCE(new.status, n.status),
    error = CASE WHEN new.status IS NULL THEN n.error WHEN new.status = 'failed' THEN new.error ELSE NULL END,
    delivered_at = CASE WHEN new.status = 'delivered' THEN new.at ELSE n.delivered_at END
FROM new
WHERE n.notification_id = %s
RETURNING n.*
"""


def record_attempt(notification_id: str, *, outcome: str, error: str | None = None,
                   status: str | None = None, at: dt.datetime | None = None) -> Notification | None:
    """Append an attempt to the history and, when given, move the status; returns the row.

    On PostgreSQL this is one UPDATE (the append is atomic, so a redelivery racing the original
    cannot lose an attempt) and one round trip, on the workers' hot path. ``retry_count`` is
    derived: attempts made minus one, receipts not counted.
    """
    at = at or utcnow()
    attempt = {"time": iso(at), "outcome": outcome, "error": error}
    db = Notification._meta.database
    if _on_postgres(db):
        rows = list(Notification.raw(_RECORD_SQL, json.dumps([attempt]), at, status, error, notification_id))
        return rows[0] if rows else None
    with db.atomic():
        row = get(notification_id)
        if row is None:
            return None
        row.attempts = [*(row.attempts or []), attempt]
        row.retry_count = max(0, sum(1 for a in row.attempts if a["outcome"] not in ("receipt", "replayed")) - 1)
        row.updated_at = at
        if status is not None:
            row.status = status
            row.error = error if status == FAILED else None
            if status == DELIVERED:
                row.delivered_at = at
        row.save()
        return row


def set_status(notification_id: str, *, status: str, error: str | None = None,
               at: dt.datetime | None = None) -> Notification | None:
    """A status set from outside the pipeline (a provider receipt or an operator's replay)."""
    return record_attempt(notification_id, outcome="receipt", error=error, status=status, at=at)


class StatusWriter:
    """Writes a notification's outcome to PostgreSQL, then to the Redis hash (workers' side)."""

    def __init__(self, *, redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def current_status(self, notification_id: str) -> str | None:
        """The status from PostgreSQL, the record: the Redis copy may lag if mirroring failed, and a
        stale ``pending`` there must not cause a second send. ``None``: no such notification."""
        row = get(notification_id)
        return row.status if row else None

    def record(self, notification_id: str, *, outcome: str, status: str | None,
               error: str | None = None) -> Notification | None:
        row = record_attempt(notification_id, outcome=outcome, error=error, status=status)
        if row is not None:
            try:
                self.mirror(row)
            except redis.exceptions.RedisError as exc:
                # PostgreSQL has the outcome; the Redis copy catches up on the next change (or expires).
                log.warning("status not mirrored to Redis: %s", type(exc).__name__)
        return row

    def mirror(self, row: Notification) -> None:
        key = self.keys.notification(row.notification_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=status_hash(
            notification_id=row.notification_id, status=row.status, created_at=iso(row.created_at),
            updated_at=iso(row.updated_at), error=row.error, retry_count=row.retry_count))
        pipe.expire(key, STATUS_TTL_S)
        pipe.execute()


__all__ = ["DELIVERED", "FAILED", "PENDING", "StatusWriter", "status_hash"]
