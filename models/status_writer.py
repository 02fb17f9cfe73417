"""A notification's status written to its record (PostgreSQL) and mirrored to Redis.

PostgreSQL is the record (history, attempts, listing); the Redis hash ``notification:<id>`` is the
fast copy kept for seven days (README, "What a send does"). The workers write through
:class:`StatusWriter`; the gateway queues the same fields on its own pipeline with
:func:`queue_status`, so the hash's shape is defined once, here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import redis.exceptions

from models.base import iso
from models.dao import notifications as dao
from models.notification import FINAL_STATUSES, Notification
from models.redis_keys import STATUS_TTL_S, RedisKeys

log = logging.getLogger(__name__)


def status_hash(
    *,
    notification_id: str,
    status: str,
    created_at: str,
    updated_at: str,
    error: str | None = None,
    retry_count: int = 0,
) -> dict[str, str]:
    """The Redis hash fields of a notification's status (README, "What a send does")."""
    return {
        "notification_id": notification_id,
        "status": status,
        "created_at": created_at,
        "updated_at": updated_at,
        "error": error or "",
        "retry_count": str(retry_count),
    }


def queue_status(pipe, key: str, fields: dict[str, str]) -> None:
    """Add the hash write and its lifetime to ``pipe`` (a blocking or an asyncio pipeline)."""
    pipe.hset(key, mapping=fields)
    pipe.expire(key, STATUS_TTL_S)


def row_status(row: Notification) -> dict[str, str]:
    """The hash fields of a row."""
    return status_hash(
        notification_id=row.notification_id,
        status=row.status,
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
        error=row.error,
        retry_count=row.retry_count,
    )


#: Called with the row after a notification reached a final status.
Listener = Callable[[Notification], None]


class StatusWriter:
    """Writes a notification's outcome to PostgreSQL, then to the Redis hash, then tells the
    listeners when the status is final: the one place a final outcome is announced from.

    Parameters:
        redis: a blocking client (``decode_responses=True``).
        keys: the key names behind ``REDIS_KEY_PREFIX``.
        listeners: called in order with the row of each final outcome recorded; one that raises
            is logged and does not undo the outcome or stop the others.
    """

    def __init__(self, *, redis, keys: RedisKeys, listeners: Sequence[Listener] = ()) -> None:
        self.redis = redis
        self.keys = keys
        self.listeners = list(listeners)

    def current_status(self, notification_id: str) -> str | None:
        """The status from PostgreSQL, the record: the Redis copy may lag if mirroring failed, and a
        stale ``pending`` there must not cause a second send. ``None``: no such notification."""
        row = dao.get(notification_id)
        return row.status if row else None

    def record(
        self,
        notification_id: str,
        *,
        outcome: str,
        status: str | None,
        error: str | None = None,
        only_from: tuple[str, ...] | None = None,
    ) -> Notification | None:
        """Record an attempt (and a status) as :func:`models.dao.notifications.record_attempt` does,
        then mirror and announce it; ``None`` when nothing was recorded."""
        row = dao.record_attempt(notification_id, outcome=outcome, error=error, status=status, only_from=only_from)
        if row is not None:
            self.share(row)
        return row

    def share(self, row: Notification) -> None:
        """Mirror a row already written to PostgreSQL, and announce it if its status is final."""
        try:
            self.mirror(row)
        except redis.exceptions.RedisError as exc:
            # PostgreSQL has the outcome; the Redis copy catches up on the next change (or expires).
            log.warning("status not mirrored to Redis: %s", type(exc).__name__)
        if row.status in FINAL_STATUSES:
            self.announce(row)

    def announce(self, row: Notification) -> None:
        """Tell every listener that ``row`` reached a final status."""
        for listener in self.listeners:
            try:
                listener(row)
            except Exception:
                log.exception("a status listener failed", extra={"notification_id": row.notification_id})

    def mirror(self, row: Notification) -> None:
        pipe = self.redis.pipeline(transaction=True)
        queue_status(pipe, self.keys.notification(row.notification_id), row_status(row))
        pipe.execute()
