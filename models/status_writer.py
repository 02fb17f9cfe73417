"""A notification's status written to its record (PostgreSQL) and mirrored to Redis.

PostgreSQL is the record (history, attempts, listing); the Redis hash ``notification:<id>`` is the
fast copy kept for seven days (README, "What a send does"). The workers write through
:class:`StatusWriter`; the gateway queues the same fields on its own pipeline with
:func:`queue_status`, so the hash's shape is defined once, here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import redis.exceptions

from models.base import iso
from models.dao import notifications as dao
from models.notification import FINAL_STATUSES, Notification
from models.redis_keys import STATUS_TTL_S, RedisKeys
from models.unavailable import UNAVAILABLE

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


class OutcomeListener(Protocol):
    """Told of every final outcome, inside the transaction that records it.

    ``staged`` writes what must exist if and only if the outcome does (the webhook events' delivery
    rows), and may return an action to run once both are committed (their publish). The action
    never runs for an outcome that was rolled back, and a crash after the commit leaves the rows for
    a sweep to find, so an outcome is told at least once.
    """

    def wants(self, status: str) -> bool:
        """Whether ``staged`` has anything to do for ``status``; cheap (no transaction opened
        when no listener wants the outcome)."""
        ...

    def staged(self, row: Notification) -> Callable[[], None] | None: ...


class StatusWriter:
    """Writes a notification's outcome to PostgreSQL, then to the Redis hash, and tells the
    listeners of a final one: the one place a final outcome is announced from.

    Parameters:
        redis: a blocking client (``decode_responses=True``).
        keys: the key names behind ``REDIS_KEY_PREFIX``.
        listeners: told of each final outcome (see :class:`OutcomeListener`). One that fails is
            logged and does not undo the outcome, unless the database itself is unavailable: then
            the outcome is not recorded either, and the caller's outage handling tries again later.
    """

    def __init__(self, *, redis, keys: RedisKeys, listeners: Sequence[OutcomeListener] = ()) -> None:
        self.redis = redis
        self.keys = keys
        self.listeners = list(listeners)

    def current_status(self, notification_id: str) -> str | None:
        """The status from PostgreSQL, the record: the Redis copy may lag if mirroring failed, and a
        stale ``pending`` there must not cause a second send. ``None``: no such notification."""
        return dao.status_of(notification_id)

    def record(
        self,
        notification_id: str,
        *,
        outcome: str,
        status: str | None,
        error: str | None = None,
        at: dt.datetime | None = None,
        only_from: tuple[str, ...] | None = None,
    ) -> Notification | None:
        """Record an attempt (and a status) as :func:`models.dao.notifications.record_attempt` does
        (``None`` when nothing was recorded), then mirror it and tell the listeners of a final one."""
        found = self.record_many(
            [notification_id], outcome=outcome, status=status, error=error, at=at, only_from=only_from
        )
        return found[0]

    def record_many(
        self,
        notification_ids: Sequence[str],
        *,
        outcome: str,
        status: str | None,
        error: str | None = None,
        at: dt.datetime | None = None,
        only_from: tuple[str, ...] | None = None,
        release: Sequence[str] = (),
    ) -> list[Notification | None]:
        """:meth:`record` for many notifications: one UPDATE, one transaction for their listeners,
        one Redis round trip for their hashes; the rows in the order of ``notification_ids``,
        ``None`` where nothing was recorded.

        ``release``: keys (the send claims the outcomes end) deleted in that same round trip, even
        where nothing was recorded; one round trip fewer per delivery. Once this returns, the keys
        are gone, or Redis failed and they expire on their own. Not deleted when this raises: the
        callers still hold what the keys guard.
        """
        ids = list(notification_ids)
        listeners = [x for x in self.listeners if x.wants(status)] if status in FINAL_STATUSES else []
        staged: list[tuple[Notification, list[Callable[[], None]]]] = []
        if listeners:
            with dao.transaction():
                rows = dao.record_attempts(ids, outcome=outcome, error=error, status=status, at=at, only_from=only_from)
                staged = [(row, self._stage(row, listeners)) for row in rows.values()]
        else:
            rows = dao.record_attempts(ids, outcome=outcome, error=error, status=status, at=at, only_from=only_from)
        try:
            self.mirror_many(list(rows.values()), release=release)
        except redis.exceptions.RedisError as exc:
            # PostgreSQL has the outcome; the Redis copy catches up on the next change (or expires).
            log.warning("status not mirrored to Redis: %s", type(exc).__name__)
        for row, actions in staged:
            self._run(row, actions)
        return [rows.get(nid) for nid in ids]

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
        """Tell the listeners of a final status written by another query. Its own transaction, so
        not atomic with that write: :meth:`record` is the way when it can be used."""
        listeners = [x for x in self.listeners if x.wants(row.status)]
        if listeners:
            with dao.transaction():
                actions = self._stage(row, listeners)
            self._run(row, actions)

    def _stage(self, row: Notification, listeners: Sequence[OutcomeListener]) -> list[Callable[[], None]]:
        actions = []
        for listener in listeners:
            try:
                with dao.transaction():  # a savepoint: a failing listener leaves the outcome intact
                    action = listener.staged(row)
            except UNAVAILABLE:
                raise
            except Exception:
                log.exception("a status listener failed", extra={"notification_id": row.notification_id})
                continue
            if action is not None:
                actions.append(action)
        return actions

    @staticmethod
    def _run(row: Notification, actions: list[Callable[[], None]]) -> None:
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("a status listener's follow-up failed", extra={"notification_id": row.notification_id})

    def mirror(self, row: Notification) -> None:
        self.mirror_many([row])

    def mirror_many(self, rows: Sequence[Notification], *, release: Sequence[str] = ()) -> None:
        """The rows' hashes written and the keys in ``release`` deleted, in one round trip."""
        if not rows and not release:
            return
        pipe = self.redis.pipeline(transaction=True)
        for row in rows:
            queue_status(pipe, self.keys.notification(row.notification_id), row_status(row))
        if release:
            pipe.delete(*release)
        pipe.execute()
