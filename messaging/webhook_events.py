"""Webhook events from final outcomes: the status writer's listener, and the sweep that finds what
was never published (README, "Webhooks").

When a notification reaches a final status, :class:`models.status_writer.StatusWriter` calls
:meth:`WebhookEvents.staged` inside the transaction that records the status. It writes one
``pending`` delivery row per subscription that wants the event. Only after the commit are the
rows' messages published to ``webhooks.queue``. So an outcome that is recorded has its deliveries,
and an outcome that is rolled back has none. A publish lost to a crash or a broker outage leaves
a ``pending`` row that nobody touches; the maintenance sweep (:meth:`WebhookEvents.republish_stale`)
publishes it again. Production is at least once, and receivers deduplicate by event id.

Nothing here makes an HTTP call. The cost on a notification's path is an insert and a publish, and
nothing at all while no subscription wants the event. The subscriptions are read at most every
:data:`SUBSCRIPTIONS_CACHE_S` seconds per process.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

from dramatiq.message import Message

from messaging.messages import webhook_message
from models.base import iso
from models.dao import webhook_deliveries as deliveries
from models.dao import webhooks
from models.notification import Notification
from models.unavailable import UNAVAILABLE
from models.webhook import Webhook, WebhookDelivery, event_type

log = logging.getLogger(__name__)

#: Seconds a process reuses its list of subscriptions: a new one gets events within this long.
SUBSCRIPTIONS_CACHE_S = 5.0


def event_body(*, event_id: str, event: str, created_at: str, notification: dict) -> str:
    """The JSON body of an event, exactly as sent on every attempt."""
    payload = {"id": event_id, "type": event, "created_at": created_at, "data": notification}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)


def message_of(delivery: WebhookDelivery) -> Message:
    return webhook_message(
        delivery_id=str(delivery.id), webhook_id=str(delivery.webhook_id), event_created_at=iso(delivery.created_at)
    )


class WebhookEvents:
    """Parameters:
    publish: puts one message on its queue (the worker's ``broker.enqueue``, or the gateway's
        publisher); raising means not published.
    cache_s: see :data:`SUBSCRIPTIONS_CACHE_S`.
    """

    def __init__(
        self,
        *,
        publish: Callable[[Message], object],
        cache_s: float = SUBSCRIPTIONS_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publish = publish
        self.cache_s = cache_s
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._subscriptions: list[Webhook] = []

    def subscriptions(self) -> list[Webhook]:
        """The active subscriptions, read again when the copy is older than ``cache_s``."""
        with self._lock:
            if self._read_at is None or self.clock() - self._read_at >= self.cache_s:
                self._subscriptions = webhooks.active()
                self._read_at = self.clock()
            return self._subscriptions

    # -- the status writer's listener ----------------------------------------------------------

    def wants(self, status: str) -> bool:
        event = event_type(status)
        try:
            return any(hook.wants(event) for hook in self.subscriptions())
        except UNAVAILABLE:
            raise  # the outcome cannot be recorded either; its writer's outage handling applies
        except Exception:
            log.exception("webhook subscriptions not read; no event for this outcome")
            return False

    def staged(self, row: Notification) -> Callable[[], None] | None:
        """Inside the outcome's transaction: a delivery row per subscription that wants the event;
        returns the publish of their messages, run after the commit."""
        event = event_type(row.status)
        targets = [hook for hook in self.subscriptions() if hook.wants(event)]
        if not targets:
            return None
        event_id = str(uuid.uuid4())
        body = event_body(event_id=event_id, event=event, created_at=iso(row.updated_at), notification=row.public())
        made = deliveries.create_many(
            [
                {
                    "event_id": event_id,
                    "webhook": hook.id,
                    "event_type": event,
                    "notification_id": row.notification_id,
                    "payload": body,
                }
                for hook in targets
            ]
        )
        messages = [message_of(delivery) for delivery in made]
        return lambda: self._publish_all(messages)

    def _publish_all(self, messages: list[Message]) -> int:
        published = 0
        for message in messages:
            try:
                self.publish(message)
                published += 1
            except Exception as exc:
                log.warning(
                    "webhook delivery %s not published (%s); the maintenance sweep publishes it later",
                    message.message_id,
                    type(exc).__name__,
                )
        return published

    # -- the maintenance sweep -----------------------------------------------------------------

    def republish_stale(self, cutoff: dt.datetime, *, limit: int) -> int:
        """Publish again the ``pending`` deliveries untouched since ``cutoff`` (their message was
        lost); returns how many. Each is marked as just published, so the next sweep waits again."""
        stale = deliveries.stale_pending(cutoff, limit=limit)
        done = []
        for delivery in stale:
            if self._publish_all([message_of(delivery)]):
                done.append(delivery.id)
        deliveries.touch(done)
        if stale:
            log.warning(
                "%d webhook deliveries were pending without a message; %d published again", len(stale), len(done)
            )
        return len(done)
