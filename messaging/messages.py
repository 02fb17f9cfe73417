"""What a delivery message carries: its body, its options, and how one is built.

A message's single argument is the self-contained notification body (the gateway's checked
request plus a template snapshot; README, "Deviations"), so a worker needs no lookup to send.
Its options carry what the middleware layers tell each other about the message, and each option
name is defined here once: the middleware set and read them, the dead-letter replay resets them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dramatiq.message import Message

from messaging.topology import ACTOR_OF_CHANNEL, QUEUE_OF_CHANNEL, WEBHOOK_ACTOR, WEBHOOKS_QUEUE
from models.notification import DEFAULT_PRIORITY, LIVE, MAX_PRIORITY, MIN_PRIORITY

# -- options carried across publishes (they travel with every copy) --------------------------------

#: AMQP priority of the publish (dramatiq's RabbitMQ broker reads this name).
BROKER_PRIORITY = "broker_priority"
#: The request's correlation id, bound again in the worker so one id follows a notification.
CORRELATION_ID = "correlation_id"
#: Retries made so far; the backoff's count. A replay from the dead-letter queue resets it.
RETRIES = "retries"
#: How often a message waited for an open circuit (not a retry).
CIRCUIT_DEFERRALS = "circuit_deferrals"
#: Set on the copy of a message whose provider accepted it but whose recording failed: the copy
#: only records the delivery and never sends a second time.
PROVIDER_ACCEPTED = "provider_accepted"
#: When dramatiq may process a delayed message (milliseconds since the epoch).
ETA = "eta"
#: The tick a periodiq job was scheduled for.
SCHEDULED_AT = "scheduled_at"
#: On a webhook delivery message: the subscription it goes to, and when its event happened (ISO
#: 8601), for the webhook metrics (the row itself is read by the actor).
WEBHOOK_ID = "webhook_id"
EVENT_CREATED_AT = "event_created_at"
#: Options a dead-letter replay keeps; every other one (retry counts, backoff state, eta) is
#: dropped, so the message starts with a fresh retry budget.
KEPT_ON_REPLAY = (BROKER_PRIORITY, CORRELATION_ID)

# -- actor options (declared with the actor, read by the middleware) ------------------------------

#: Per-actor retry limits for :class:`middleware.backoff.Backoff`; an actor without them gets
#: ``RETRY_MAX`` and ``RETRY_BACKOFF_UNIT_MS`` (the webhook actor has its own, WEBHOOK_*).
RETRY_LIMIT = "retry_limit"
RETRY_UNIT_MS = "retry_unit_ms"

# -- marks set on the consumed message only, for the middleware that run after -------------------

#: A later attempt of this message is already published, and why: the dead-letter middleware
#: leaves it alone and the metrics count it neither delivered nor failed.
RETRY_SCHEDULED = "retry_scheduled"
#: Values of :data:`RETRY_SCHEDULED`: a backoff retry, a wait out a data store's outage, a copy
#: that only records a delivery the provider accepted.
BACKOFF, OUTAGE, RECORD_ONLY = "backoff", "outage", "record_only"
#: The status this attempt recorded when it ended the notification (``delivered``, ``expired``), for
#: the metrics.
RECORDED = "recorded"
#: Why a message is dead-lettered, when the backoff decided it (for the alert).
FAILURE_REASON = "failure_reason"


def notification_of(message: Message) -> dict[str, Any]:
    """The notification body of a delivery message (its single argument), or an empty dict."""
    args = message.args
    return args[0] if args and isinstance(args[0], dict) else {}


def body_mode(notification: dict[str, Any]) -> str:
    """``live`` or ``test`` (a body from before test mode has none: live)."""
    return notification.get("mode") or LIVE


def mode_of(message: Message) -> str:
    """The mode of a delivery message: a test-mode notification is sent by the simulated providers."""
    return body_mode(notification_of(message))


def expires_at_of(message: Message) -> dt.datetime | None:
    """The body's ``expires_at`` as naive UTC (what the database stores), or ``None``."""
    value = notification_of(message).get("expires_at")
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def ms_until_expiry(message: Message, now: dt.datetime) -> int | None:
    """Milliseconds until the notification expires (0 once it has), or ``None`` if it never does.

    A wait (a retry, a breaker's deferral) longer than this is cut to it, so an expiring
    notification comes back when it expires and ends ``expired`` then rather than later.
    """
    expires = expires_at_of(message)
    if expires is None:
        return None
    return max(0, int((expires - now).total_seconds() * 1000))


def clamp_priority(value: Any) -> int:
    """A body's priority as an AMQP priority: 1-10, the default when absent or unreadable."""
    try:
        priority = int(value)
    except (TypeError, ValueError):
        priority = DEFAULT_PRIORITY
    return max(MIN_PRIORITY, min(MAX_PRIORITY, priority))


def delivery_message(
    *, body: dict[str, Any], options: dict[str, Any] | None = None, message_id: str | None = None
) -> Message:
    """The message that delivers ``body`` on its channel's queue, to its channel's actor.

    Raises:
        KeyError: the body's ``notification_type`` is not a channel.
    """
    channel = body["notification_type"]
    return Message(
        queue_name=QUEUE_OF_CHANNEL[channel],
        actor_name=ACTOR_OF_CHANNEL[channel],
        args=(body,),
        kwargs={},
        options={BROKER_PRIORITY: clamp_priority(body.get("priority")), **(options or {})},
        message_id=message_id or body["notification_id"],
    )


def webhook_message(*, delivery_id: str, webhook_id: str, event_created_at: str) -> Message:
    """The message that sends one webhook delivery (its row holds the body and the attempts)."""
    return Message(
        queue_name=WEBHOOKS_QUEUE,
        actor_name=WEBHOOK_ACTOR,
        args=(delivery_id,),
        kwargs={},
        options={WEBHOOK_ID: webhook_id, EVENT_CREATED_AT: event_created_at},
        message_id=delivery_id,
    )
