"""The dead-letter queue as an operator's store: ``failed.queue`` itself, read and emptied through pika.

There is no PostgreSQL mirror. The queue already holds everything a replay needs (the original
dramatiq message, whose argument is the self-contained notification body, and RabbitMQ's
``x-death`` record), and the row in ``notification_status`` already holds the error, attempts and
status. A mirror would be a second copy that can disagree with the queue (a purge by
``rabbitmqctl``, a dead letter whose row write failed); listing the queue itself cannot.

Reading a queue without consuming it is not something AMQP offers, so a reader takes messages with
``basic_get`` (no auto-ack), holding them on its channel, and hands them back with
``basic_nack(requeue=True)``; RabbitMQ puts requeued messages back in their original positions,
marked redelivered. A search holds every message it passed until it has found its own (handing one
back at once would put it back at the head, where the next ``basic_get`` would meet it again), so
the others are out of the queue only for the length of the call. While held they are invisible to
another reader (a replay racing a listing may briefly answer "not found"). A reader looks at most
:data:`MAX_SCAN` messages from the head, so a huge queue costs bounded work.

A replay never loses a message: the notification goes back to ``pending`` first (the worker drops a
message whose notification is ``failed``), then the message is re-published and confirmed, and only
then is the dead letter acked. A crash between confirm and ack leaves the dead letter in place, and
a second replay of it is absorbed by the workers' "already delivered" check (README, "Working the
dead-letter queue").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from dramatiq.message import Message

from messaging.messages import CORRELATION_ID, KEPT_ON_REPLAY, delivery_message
from messaging.rabbitmq import message_count, with_defaults
from messaging.topology import FAILED_QUEUE, QUEUE_OF_CHANNEL
from models.base import iso
from models.dao import notifications as dao
from models.notification import DELIVERED, Notification

log = logging.getLogger(__name__)

#: Most messages one listing or search takes from the head of ``failed.queue``.
MAX_SCAN = 1000

REPLAYED_OK, ALREADY_DELIVERED = "replayed", "already_delivered"


class ReplayError(Exception):
    """The dead letter cannot be replayed; it stays in ``failed.queue``. ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class FailedMessage:
    """One message taken (not yet acked) from ``failed.queue``."""

    delivery_tag: int
    body: bytes
    properties: pika.BasicProperties
    message: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, delivery_tag: int, properties: pika.BasicProperties, body: bytes) -> FailedMessage:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            message = {}
        return cls(delivery_tag, body, properties, message if isinstance(message, dict) else {})

    @property
    def notification(self) -> dict[str, Any]:
        args = self.message.get("args") or []
        return args[0] if args and isinstance(args[0], dict) else {}

    @property
    def notification_id(self) -> str | None:
        return self.notification.get("notification_id") or self.message.get("message_id")

    @property
    def notification_type(self) -> str | None:
        kind = self.notification.get("notification_type")
        if kind in QUEUE_OF_CHANNEL:
            return kind
        return next((c for c, q in QUEUE_OF_CHANNEL.items() if q == self.message.get("queue_name")), None)

    @property
    def death(self) -> dict[str, Any]:
        """RabbitMQ's most recent ``x-death`` entry: queue, reason, time, count."""
        deaths = (self.properties.headers or {}).get("x-death") or []
        return deaths[0] if deaths and isinstance(deaths[0], dict) else {}

    @property
    def failed_at(self) -> dt.datetime | None:
        value = self.death.get("time")
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        return None

    def item(self, row: Notification | None) -> dict[str, Any]:
        """The API's and CLI's view: id, type, error, retries and time, plus RabbitMQ's reason."""
        death = self.death
        return {
            "notification_id": self.notification_id,
            "notification_type": self.notification_type,
            "error": row.error if row else None,
            "retry_count": row.retry_count if row else int(self.notification.get("retry_count") or 0),
            "failed_at": iso(self.failed_at or (row.updated_at if row else None)),
            "status": row.status if row else None,
            "reason": _text(death.get("reason")),
            "queue": _text(death.get("queue")),
        }

    def replay_message(self) -> Message:
        """The message to re-publish: same ids, the right queue, options reset to a fresh budget."""
        kind = self.notification_type
        if kind is None:
            raise ReplayError("UNROUTABLE", "the dead letter names no notification_type")
        body = {**self.notification, "notification_type": kind, "retry_count": 0}
        old = self.message.get("options") or {}
        options = {k: old[k] for k in KEPT_ON_REPLAY if old.get(k) is not None}
        if CORRELATION_ID not in options and self.properties.correlation_id:
            options[CORRELATION_ID] = self.properties.correlation_id
        message = delivery_message(
            body=body, options=options, message_id=self.message.get("message_id") or self.notification_id
        )
        return message.copy(kwargs=self.message.get("kwargs") or {})


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class DeadLetterQueue:
    """One connection to ``failed.queue``; closing it hands back every message still held."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(with_defaults(url)))
        self.channel = self.connection.channel()

    def __enter__(self) -> DeadLetterQueue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                self.connection.close()

    def depth(self) -> int:
        return message_count(self.channel, FAILED_QUEUE)

    def get(self) -> FailedMessage | None:
        method, properties, body = self.channel.basic_get(FAILED_QUEUE, auto_ack=False)
        if method is None:
            return None
        return FailedMessage.parse(method.delivery_tag, properties, body)

    def take(self, limit: int) -> list[FailedMessage]:
        """Up to ``limit`` messages from the head, held (unacked) by this connection."""
        out: list[FailedMessage] = []
        while len(out) < limit:
            letter = self.get()
            if letter is None:
                break
            out.append(letter)
        return out

    def peek(self, limit: int) -> list[FailedMessage]:
        """The first ``limit`` messages, handed straight back (see the module's note on ordering)."""
        letters = self.take(min(limit, MAX_SCAN))
        if letters:
            self.channel.basic_nack(delivery_tag=letters[-1].delivery_tag, multiple=True, requeue=True)
        return letters

    def find(self, notification_id: str, *, scan: int = MAX_SCAN) -> FailedMessage | None:
        """The dead letter of ``notification_id``, held; every other message taken is handed back,
        all of them once the search ends, so none is met twice."""
        passed: list[FailedMessage] = []
        found = None
        try:
            while len(passed) < scan:
                letter = self.get()
                if letter is None:
                    break
                if letter.notification_id == notification_id:
                    found = letter
                    break
                passed.append(letter)
        finally:
            for letter in passed:
                self.release(letter)
        return found

    def ack(self, letter: FailedMessage) -> None:
        self.channel.basic_ack(delivery_tag=letter.delivery_tag)

    def release(self, letter: FailedMessage) -> None:
        self.channel.basic_nack(delivery_tag=letter.delivery_tag, requeue=True)

    def purge(self) -> int:
        return self.channel.queue_purge(FAILED_QUEUE).method.message_count


def listing(url: str, *, page: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(depth, items of the page); pages past :data:`MAX_SCAN` messages are empty."""
    with DeadLetterQueue(url) as dlq:
        total = dlq.depth()
        letters = dlq.peek(page * limit)[(page - 1) * limit :]
    return total, [letter.item(dao.get(letter.notification_id or "")) for letter in letters]


def show(url: str, notification_id: str) -> dict[str, Any] | None:
    """Everything about one dead letter (left in place), or ``None``."""
    with DeadLetterQueue(url) as dlq:
        letter = dlq.find(notification_id)
        if letter is None:
            return None
        dlq.release(letter)
    row = dao.get(notification_id)
    death = {
        k: (iso(v.astimezone(dt.UTC).replace(tzinfo=None)) if isinstance(v, dt.datetime) else _text(v))
        for k, v in letter.death.items()
        if not isinstance(v, list | dict)
    }
    return {
        **letter.item(row),
        "x_death": death,
        "options": letter.message.get("options") or {},
        "notification": letter.notification,
        "attempts": row.attempts if row else [],
    }


class Replayer:
    """Puts dead letters back on their queues.

    Parameters:
        publish: publishes a message and returns only after the broker's confirm.
        mirror: copies a row's status to Redis (it may be a no-op).
    """

    def __init__(self, *, publish: Callable[[Message], Any], mirror: Callable[[Notification], Any]) -> None:
        self.publish = publish
        self.mirror = mirror

    def replay_one(self, url: str, notification_id: str) -> str | None:
        """The outcome, or ``None`` when no dead letter of that id is in ``failed.queue``."""
        with DeadLetterQueue(url) as dlq:
            letter = dlq.find(notification_id)
            if letter is None:
                return None
            return self.replay(dlq, letter)

    def replay_all(self, url: str) -> dict[str, list[str]]:
        """Every dead letter present when it starts; failures stay queued. Outcome -> ids."""
        out: dict[str, list[str]] = {}
        with DeadLetterQueue(url) as dlq:
            # Failures stay held (unacked) until the connection closes, so they are not met again.
            for _ in range(dlq.depth()):
                letter = dlq.get()
                if letter is None:
                    break
                try:
                    outcome = self.replay(dlq, letter, hand_back=False)
                except ReplayError as exc:
                    outcome = exc.code
                except Exception as exc:
                    log.warning(
                        "dead letter not replayed: %s",
                        type(exc).__name__,
                        extra={"notification_id": letter.notification_id},
                    )
                    outcome = "PUBLISH_FAILED"
                out.setdefault(outcome, []).append(str(letter.notification_id))
        return out

    def replay(self, dlq: DeadLetterQueue, letter: FailedMessage, *, hand_back: bool = True) -> str:
        """Replay one held dead letter; on any error it stays in ``failed.queue`` (handed back now, or
        when the connection closes)."""
        try:
            message = letter.replay_message()
            row = dao.get(letter.notification_id or "")
            if row is None:
                raise ReplayError("NO_RECORD", "no notification record for this dead letter; purge it instead")
            if row.status == DELIVERED:
                # A stale copy (the crash window): sending it again would be a duplicate.
                dlq.ack(letter)
                log.warning(
                    "dead letter of a delivered notification discarded", extra={"notification_id": row.notification_id}
                )
                return ALREADY_DELIVERED
            previous = (row.status, row.error)
            self._mirror(dao.mark_replayed(row.notification_id))
            try:
                self.publish(message)
            except Exception:
                self._mirror(dao.unmark_replayed(row.notification_id, *previous))
                raise
        except BaseException:
            if hand_back:
                dlq.release(letter)
            raise
        dlq.ack(letter)
        log.info("dead letter replayed", extra={"notification_id": row.notification_id, "queue": message.queue_name})
        return REPLAYED_OK

    def _mirror(self, row: Notification | None) -> None:
        if row is None:
            return
        try:
            self.mirror(row)
        except Exception as exc:
            log.warning("status not mirrored to Redis: %s", type(exc).__name__)
