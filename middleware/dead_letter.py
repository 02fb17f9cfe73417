"""The end of the road for a message that will not be tried again: status ``failed``, then
``failed.queue``.

A failed message is nacked without requeue, and RabbitMQ dead-letters it through the queue's
``x-dead-letter-*`` arguments to ``failed.queue``, where it keeps its body for an operator's replay.
The status is written first so the API never says ``pending`` for a parked message. A message a
retry middleware has already re-enqueued (``options["retry_scheduled"]``) is left alone; one whose
retries are used up arrives here with ``options["failure_reason"]`` set by
:class:`middleware.backoff.Backoff`. Every dead-lettering is an alert: an ERROR line with its reason.
"""

from __future__ import annotations

import logging

import peewee
import redis.exceptions
from dramatiq import Middleware
from playhouse.pool import MaxConnectionsExceeded

from middleware.log_context import notification_of
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
    reason = message.options.get("failure_reason")
    if reason:
        return str(reason)
    if isinstance(exception, PermanentProviderError):
        return "permanent_error"
    if isinstance(exception, ProviderError):
        return "provider_error"
    return "internal_error"


class Deferred(Exception):
    """Raised by an actor for a message that must wait and come back (another worker is sending
    the same notification right now), without failing and without using a retry."""


#: A data store the worker needs is away, or the message must wait: it comes back, it does not fail.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, peewee.OperationalError,
               peewee.InterfaceError, MaxConnectionsExceeded, Deferred)
#: How long such a message waits before it is tried again.
OUTAGE_DELAY_MS = 5_000


class DeadLetter(Middleware):
    """Provider errors and bugs end the message in ``failed.queue``; an outage of PostgreSQL or
    Redis only delays it (re-published after :data:`OUTAGE_DELAY_MS`, attempts not counted).

    Whatever happens while recording, the message is either re-published or failed (nacked into
    the dead-letter queue), never acked and dropped: dramatiq swallows errors in ``after_*`` hooks,
    so the fail comes in a ``finally``.
    """

    def __init__(self, *, status) -> None:
        self.status = status

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None or message.options.get("retry_scheduled"):
            return
        if isinstance(exception, UNAVAILABLE) and self._wait_out(broker, message, exception):
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
        log.error("notification failed and was moved to the dead-letter queue (%s): %s", reason, error,
                  extra={"error": error, "actor": message.actor_name, "reason": reason, "alert": True,
                         "retries": int(message.options.get("retries") or 0)})

    def _wait_out(self, broker, message, exception) -> bool:
        try:
            broker.enqueue(message.copy(), delay=OUTAGE_DELAY_MS)
        except Exception:
            log.exception("could not re-publish during an outage; dead-lettering instead")
            return False
        message.options["retry_scheduled"] = True
        log.warning("a data store is unavailable (%s); the message waits %d ms", type(exception).__name__,
                    OUTAGE_DELAY_MS)
        return True
