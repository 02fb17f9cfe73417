"""The due-time loop: scheduled notifications published when their ``send_at`` comes.

The schedule lives in PostgreSQL (``status = 'scheduled'``, ``send_at``), not in the broker's
delayed messages, which would hold days of work in worker memory. Every maintenance worker
process runs this loop in a background thread: each pass takes up to :data:`BATCH` due rows with
``FOR UPDATE SKIP LOCKED``, so any number of processes share the work and each row is published by
one of them; it publishes them (their confirms pipelined, so a full pass costs about one round
trip to RabbitMQ) and marks them ``pending`` in the same transaction,
so a crash before the commit leaves them ``scheduled`` to be published again (the workers' send
claim and status check make that second copy harmless). Rows that fell due while every process was
down are simply the oldest due ones on the next pass (README, "Scheduling, expiry, cancelling").

At publish time the user is read again: a user deactivated, gone, without a push token, or who
turned the channel off meanwhile gets nothing, and the notification ends ``cancelled`` with the
reason; one past its ``expires_at`` ends ``expired``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dramatiq import Middleware

from messaging.messages import CORRELATION_ID, delivery_message
from messaging.topology import MAINTENANCE_QUEUE
from models.base import utcnow
from models.dao import notifications as dao
from models.dao import users as users_dao
from models.notification import CANCELLED, EXPIRED, SCHEDULED, Notification
from models.status_writer import queue_status, row_status
from models.user import User

log = logging.getLogger(__name__)

#: Most rows one pass takes (one transaction, one UPDATE for the published ones).
BATCH = 500
#: Seconds between passes when nothing more is due; a notification is published at most this late
#: (plus a pass's own time).
POLL_S = 1.0
#: Seconds to wait after a pass failed (PostgreSQL or RabbitMQ away) before the next one.
FAILURE_PAUSE_S = 5.0
EXPIRED_ERROR = "expired before it was handed to the provider"


def verdict(row: Notification, user: User | None, now) -> tuple[str, str] | None:
    """``None`` to publish the row now, else the status it ends in and why."""
    if row.expires_at is not None and row.expires_at <= now:
        return EXPIRED, EXPIRED_ERROR
    channel = row.notification_type
    if user is None:
        return CANCELLED, "the user no longer exists"
    if not user.is_active:
        return CANCELLED, "the user was deactivated before the notification was due"
    if (user.preferences or {}).get(channel, True) is False:
        return CANCELLED, f"the user turned {channel} notifications off before the notification was due"
    if channel == "push" and not user.push_token:
        return CANCELLED, "the user has no push token any more"
    return None


class DueTimeLoop:
    """One pass, or passes until stopped; the middleware below runs it beside a maintenance worker.

    Parameters:
        runtime: the worker's runtime (databases, status writer).
        publish_many: publishes messages and returns once the broker confirmed them all; raises
            if it did not.
        ended: called with (channel, status) for each notification ended without a send (metrics).
    """

    def __init__(self, *, runtime, publish_many: Callable, ended: Callable[[str, str], None] | None = None) -> None:
        self.runtime = runtime
        self.publish_many = publish_many
        self.ended = ended or (lambda channel, status: None)

    def run_once(self) -> int:
        """Publish or end the due rows of one batch; how many were handled."""
        now = utcnow()
        for db in self.runtime.databases.distinct():
            db.connect(reuse_if_open=True)
        try:
            with dao.transaction():
                rows = dao.due(now, limit=BATCH)
                if not rows:
                    return 0
                users = users_dao.get_many({str(row.user_id) for row in rows})
                to_publish, messages, finished = [], [], []
                for row in rows:
                    user = users.get(str(row.user_id))
                    ending = verdict(row, user, now)
                    if ending is None:
                        messages.append(self._message(row, user))
                        to_publish.append(row.notification_id)
                        continue
                    status, error = ending
                    ended = dao.record_attempt(
                        row.notification_id, outcome=status, status=status, error=error, at=now, only_from=(SCHEDULED,)
                    )
                    if ended is not None:
                        finished.append(ended)
                if messages:
                    self.publish_many(messages)
                published = dao.mark_published(to_publish, now)
        finally:
            for db in self.runtime.databases.distinct():
                db.close()
        self._mirror(published)
        for row in finished:
            self.runtime.status.share(row)
            self.ended(row.notification_type, row.status)
        if published or finished:
            log.info("due-time loop: %d published, %d ended", len(published), len(finished))
        return len(rows)

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception as exc:
                log.warning("due-time pass failed (%s); retrying in %.0f s", type(exc).__name__, FAILURE_PAUSE_S)
                stop.wait(FAILURE_PAUSE_S)
                continue
            if handled < BATCH:
                stop.wait(POLL_S)

    @staticmethod
    def _message(row: Notification, user: User):
        payload = row.payload or {}
        body = {**payload.get("body", {}), "user_email": user.email, "user_push_token": user.push_token}
        options = {CORRELATION_ID: payload["correlation_id"]} if payload.get("correlation_id") else {}
        return delivery_message(body=body, options=options)

    def _mirror(self, rows: list[Notification]) -> None:
        if not rows:
            return
        status = self.runtime.status
        try:
            pipe = status.redis.pipeline(transaction=False)
            for row in rows:
                queue_status(pipe, status.keys.notification(row.notification_id), row_status(row))
            pipe.execute()
        except Exception as exc:
            log.warning("published statuses not mirrored to Redis: %s", type(exc).__name__)


class RunDueTimeLoop(Middleware):
    """Starts the loop in a worker that consumes ``maintenance.queue`` (or every queue), stops it
    when the worker shuts down."""

    def __init__(self, *, loop: DueTimeLoop) -> None:
        self.loop = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker):
        queues = worker.consumer_whitelist
        if queues and MAINTENANCE_QUEUE not in queues:
            return
        self._thread = threading.Thread(target=self.loop.run_forever, args=(self._stop,), name="due-time", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
