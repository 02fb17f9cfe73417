"""The end of the road for a message that will not be tried again: status ``failed``, then
``failed.queue``.

A failed message is nacked without requeue, and RabbitMQ dead-letters it through the queue's
``x-dead-letter-*`` arguments to ``failed.queue``, where it keeps its body for an operator's replay.
The status is written first so the API never says ``pending`` for a parked message. A message whose
later attempt is already published (a backoff retry, an outage wait) is left alone; one whose
retries are used up arrives here with its ``failure_reason`` set by :class:`middleware.backoff.Backoff`.
Every dead-lettering is an alert: an ERROR line with its reason.

Only the delivery actors' messages are notifications. A webhook delivery that will not be tried
again is ended by :class:`middleware.webhook_outcome.WebhookOutcome` (its row ``failed``, the
message acked); a maintenance tick catches its own errors.
"""

from __future__ import annotations

import logging

from dramatiq import Middleware

from messaging.messages import FAILURE_REASON, RETRIES, RETRY_SCHEDULED, notification_of
from messaging.topology import CHANNEL_OF_ACTOR
from models.notification import FAILED
from providers.errors import PermanentProviderError, ProviderError

log = logging.getLogger(__name__)


def describe(exception: BaseException) -> str:
    """The error text kept on the notification: provider errors as they are, others by type only,
    so no internal detail (or secret) of an unexpected exception reaches the API."""
    if isinstance(exception, ProviderError):
        return str(exception)
    return f"internal_error: {type(exception).__name__}"


def failure_reason(message, exception: BaseException) -> str:
    """Why a message is dead-lettered: what the retry middleware said, else the error's class."""
    reason = message.options.get(FAILURE_REASON)
    if reason:
        return str(reason)
    if isinstance(exception, PermanentProviderError):
        return "permanent_error"
    if isinstance(exception, ProviderError):
        return "provider_error"
    return "internal_error"


class DeadLetter(Middleware):
    """Provider errors and bugs end the message in ``failed.queue``.

    Whatever happens while recording, the message is failed (nacked into the dead-letter queue),
    never acked and dropped: dramatiq swallows errors in ``after_*`` hooks, so the fail comes in a
    ``finally``.

    Parameters:
        status: the :class:`~models.status_writer.StatusWriter` recording the failure.
    """

    def __init__(self, *, status) -> None:
        self.status = status

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None or message.options.get(RETRY_SCHEDULED) or message.actor_name not in CHANNEL_OF_ACTOR:
            return
        nid = notification_of(message).get("notification_id")
        error = describe(exception)
        try:
            if nid:
                self.status.record(nid, outcome="failed", status=FAILED, error=error)
        except Exception:
            log.exception("could not record the failure; the message still goes to the dead-letter queue")
        finally:
            message.fail()
        reason = failure_reason(message, exception)
        log.error(
            "notification failed and was moved to the dead-letter queue (%s): %s",
            reason,
            error,
            extra={
                "error": error,
                "actor": message.actor_name,
                "reason": reason,
                "alert": True,
                "retries": int(message.options.get(RETRIES) or 0),
            },
        )
