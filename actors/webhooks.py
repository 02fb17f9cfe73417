"""The webhook actor: send one delivery and record the attempt (README, "Webhooks").

``deliver_webhook`` consumes ``webhooks.queue``, apart from the notifications, so webhook work
never delays a notification. Each attempt POSTs the delivery's stored body (same bytes, same event
id, a fresh signature), records the answer on the row, and raises on anything but a 2xx.
:class:`middleware.backoff.Backoff` then retries it on the webhook schedule (``WEBHOOK_RETRY_MAX``,
``WEBHOOK_BACKOFF_UNIT_MS``, the actor's own options), and
:class:`middleware.webhook_outcome.WebhookOutcome` ends it ``failed`` when nothing was re-published.
Registering the actor also makes the worker's status writer produce the events
(:class:`messaging.webhook_events.WebhookEvents`).
"""

from __future__ import annotations

import logging

import dramatiq

from actors.runtime import Runtime
from logs import log_context
from messaging.messages import RETRY_LIMIT, RETRY_UNIT_MS
from messaging.topology import WEBHOOK_ACTOR, WEBHOOKS_QUEUE
from messaging.webhook_events import WebhookEvents
from models.dao import webhook_deliveries as deliveries
from models.webhook import PENDING, SUCCEEDED
from providers.errors import PermanentProviderError, RetryableProviderError

log = logging.getLogger(__name__)


def deliver(runtime: Runtime, delivery_id: str) -> str | None:
    """One attempt; ``succeeded`` on a 2xx, ``None`` for a delivery that is gone (its webhook was
    deleted) or already ended (a duplicate message).

    Raises:
        RetryableProviderError: any other answer, a timeout, a refused connection, a name that
            does not resolve: worth another attempt.
        PermanentProviderError: the URL's host now resolves to an address Herald does not call.
    """
    delivery = deliveries.get(delivery_id)
    if delivery is None:
        log.info("webhook delivery %s is gone (its webhook was deleted); dropped", delivery_id)
        return None
    with log_context(notification_id=delivery.notification_id):
        if delivery.state != PENDING:
            log.info("webhook delivery %s already %s; duplicate dropped", delivery_id, delivery.state)
            return None
        hook = delivery.webhook
        if not hook.is_active:
            deliveries.mark_failed(delivery_id, error="the webhook is not active")
            return None
        outcome = runtime.webhooks.post(
            hook.url, delivery.payload.encode("utf-8"), secret=hook.secret, event_id=str(delivery.event_id)
        )
        deliveries.record_attempt(
            delivery_id, status_code=outcome.status_code, error=outcome.error, succeeded=outcome.ok
        )
        if outcome.ok:
            log.info("webhook delivered", extra={"webhook_id": str(hook.id), "status_code": outcome.status_code})
            return SUCCEEDED
        error = RetryableProviderError if outcome.retryable else PermanentProviderError
        raise error(outcome.error, reason=outcome.reason, retry_after_s=outcome.retry_after_s)


def register(broker: dramatiq.Broker, runtime: Runtime) -> WebhookEvents:
    """Declare ``deliver_webhook`` on ``broker`` and make ``runtime``'s status writer produce events."""
    settings = runtime.settings
    events = WebhookEvents(publish=broker.enqueue)
    runtime.status.listeners.append(events)

    @dramatiq.actor(
        broker=broker,
        actor_name=WEBHOOK_ACTOR,
        queue_name=WEBHOOKS_QUEUE,
        **{RETRY_LIMIT: settings.webhook_retry_max, RETRY_UNIT_MS: settings.webhook_backoff_unit_ms},
    )
    def deliver_webhook(delivery_id: str) -> str | None:
        return deliver(runtime, delivery_id)

    return events
