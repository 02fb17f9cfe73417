"""The end of the road for a message that will not be tried again: status ``failed``, then
``failed.queue``.

A failed message is nacked without requeue, and RabbitMQ dead-letters it through the queue's
``x-dead-letter-*`` arguments to ``failed.queue``, where it keeps its body for an operator's replay.
The status is written first so the API never says ``pending`` for a parked message. A message a
retry middleware has already re-enqueued (``options["retry_scheduled"]``) is left alone.
"""

from __future__ import annotations

import logging

from dramatiq import Middleware

from middleware.log_context import notification_of
from models.notification import FAILED
from providers.errors import ProviderError

log = logging.getLogger(__name__)


def describe(exception: BaseException) -> str:
    """The error text kept on the notification: provider errors as they are, others by type only,
    so no internal detail (or secret) of an unexpected exception reaches the API."""
    if isinstance(exception, ProviderError):
        return str(exception)
    return f"internal_error: {type(exception).__name__}"


class DeadLetter(Middleware):
    def __init__(self, *, status) -> None:
        self.status = status

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None or message.options.get("retry_scheduled"):
            return
        nid = notification_of(message).get("notification_id")
        error = describe(exception)
        if nid:
            self.status.record(nid, outcome="failed", status=FAILED, error=error)
        message.options["dead_letter_reason"] = error
        message.fail()
        log.error("notification failed and was moved to the dead-letter queue: %s", error,
                  extra={"error": error, "actor": message.actor_name})
