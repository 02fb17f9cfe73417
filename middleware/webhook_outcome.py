"""The end of a webhook delivery that will not be tried again: its row ``failed``, the message acked.

The webhook actor records each attempt itself (answer, error, ``succeeded`` on a 2xx) and raises on
a failure. :class:`middleware.backoff.Backoff` then re-publishes it on the webhook schedule, or marks
it exhausted. This middleware sits above Backoff in the stack (its ``after_process_message`` runs
after Backoff's) and ends every failure nothing re-published. A failed delivery touches neither
the notification nor ``failed.queue``: the row is its record, and the receiver's outage is not
Herald's failure. If the database is away even for that, the row stays ``pending``, and the
maintenance sweep publishes it again.
"""

from __future__ import annotations

import logging

from dramatiq import Middleware

from messaging.messages import FAILURE_REASON, RETRIES, RETRY_SCHEDULED
from messaging.topology import WEBHOOK_ACTOR
from models.dao import webhook_deliveries as deliveries
from providers.errors import ProviderError

log = logging.getLogger(__name__)


class WebhookOutcome(Middleware):
    def after_process_message(self, broker, message, *, result=None, exception=None):
        if message.actor_name != WEBHOOK_ACTOR or exception is None or message.options.get(RETRY_SCHEDULED):
            return
        # A provider error was recorded by the actor as the attempt's error; anything else is a bug,
        # named by its type only.
        error = None if isinstance(exception, ProviderError) else f"internal_error: {type(exception).__name__}"
        delivery_id = message.args[0] if message.args else None
        try:
            deliveries.mark_failed(delivery_id, error=error)
        except Exception as exc:
            log.warning("webhook delivery not marked failed (%s); it stays pending for the sweep", type(exc).__name__)
            return
        log.warning(
            "webhook delivery failed for good (%s): %s",
            message.options.get(FAILURE_REASON) or getattr(exception, "reason", "error"),
            error or str(exception),
            extra={"delivery_id": delivery_id, "retries": int(message.options.get(RETRIES) or 0)},
        )
