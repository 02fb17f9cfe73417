"""Backoff: a retryable provider failure is tried again after ``RETRY_BACKOFF_UNIT_MS * 2**n``.

dramatiq's ``Retries`` adds jitter that cannot be switched off and keeps its own count, so it is
replaced rather than configured. A retry is a delayed re-publish of a copy that
carries the count in its options (``retries``) and in the body's ``retry_count``: the count travels
with the message, so a worker restart or another worker process continues it instead of starting
over. Only :class:`~providers.errors.RetryableProviderError` is retried; everything else, and a
message whose retries are used up, is left to :class:`middleware.dead_letter.DeadLetter`, the one
place that ends a message. This middleware sits *after* DeadLetter in the stack, so its
``after_process_message`` runs first and its ``retry_scheduled`` mark is seen there.

The limits are per actor: an actor declared with the ``retry_limit`` and ``retry_unit_ms`` options
(the webhook actor: ``WEBHOOK_RETRY_MAX``, ``WEBHOOK_BACKOFF_UNIT_MS``) retries on its own schedule;
the others use the constructor's (``RETRY_MAX``, ``RETRY_BACKOFF_UNIT_MS``). Only a notification's
attempts are recorded here; any other actor records its own.
"""

from __future__ import annotations

import logging
import math

from dramatiq import Middleware
from dramatiq.errors import ActorNotFound

from messaging.messages import (
    BACKOFF,
    FAILURE_REASON,
    RETRIES,
    RETRY_LIMIT,
    RETRY_SCHEDULED,
    RETRY_UNIT_MS,
    ms_until_expiry,
    notification_of,
)
from models.base import utcnow
from providers.errors import RetryableProviderError

log = logging.getLogger(__name__)

RETRIES_EXHAUSTED = "retries_exhausted"
RETRY_NOT_PUBLISHED = "retry_not_published"
#: Attempt outcome recorded for a failure that will be retried (the status stays ``pending``).
RETRY_OUTCOME = "retry_scheduled"
#: Longest single wait, whatever ``Retry-After`` or the settings ask: dramatiq holds a delayed
#: message unacked in worker memory, and RabbitMQ takes it back after ``consumer_timeout`` (30 min).
MAX_DELAY_MS = 15 * 60 * 1000


def compute_delay(n: int, unit_ms: int) -> int:
    """Milliseconds before retry ``n`` (1-based): ``unit_ms * 2**n``, no jitter, so the documented
    2, 4, 8, 16, 32 s schedule is exact and testable.

    Raises:
        ValueError: ``n`` is below 1.
    """
    if n < 1:
        raise ValueError(f"retry numbers start at 1, got {n}")
    return unit_ms * 2**n


def schedule_ms(max_retries: int, unit_ms: int) -> int:
    """The whole retry schedule: the sum of every wait before the last retry (62 s by default).

    The maintenance job's "pending too long" report waits at least this long before it calls a
    notification stuck.
    """
    return sum(compute_delay(n, unit_ms) for n in range(1, max_retries + 1))


def retry_delay(n: int, unit_ms: int, retry_after_s: float | None = None) -> int:
    """The wait actually used: the 2^n schedule, never shorter than a provider's ``Retry-After``
    (FCM 429), never longer than :data:`MAX_DELAY_MS`."""
    delay = compute_delay(n, unit_ms)
    if retry_after_s is not None and retry_after_s > 0:
        delay = max(delay, math.ceil(retry_after_s * 1000))
    return min(delay, MAX_DELAY_MS)


class Backoff(Middleware):
    """Re-publishes a retryable failure with its 2^n delay, at most ``max_retries`` times.

    Parameters:
        status: the :class:`~models.status_writer.StatusWriter` recording each attempt.
        max_retries: ``RETRY_MAX``; 0 means a retryable failure is final.
        unit_ms: ``RETRY_BACKOFF_UNIT_MS``.
    """

    def __init__(self, *, status, max_retries: int, unit_ms: int) -> None:
        self.status = status
        self.max_retries = max_retries
        self.unit_ms = unit_ms

    @property
    def actor_options(self):
        return {RETRY_LIMIT, RETRY_UNIT_MS}

    def limits(self, broker, message) -> tuple[int, int]:
        """(retries allowed, backoff unit in ms) for the message's actor."""
        try:
            options = broker.get_actor(message.actor_name).options
        except ActorNotFound:
            options = {}
        return options.get(RETRY_LIMIT, self.max_retries), options.get(RETRY_UNIT_MS, self.unit_ms)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not isinstance(exception, RetryableProviderError) or message.options.get(RETRY_SCHEDULED):
            return
        max_retries, unit_ms = self.limits(broker, message)
        made = int(message.options.get(RETRIES) or 0)
        if made >= max_retries:
            message.options[FAILURE_REASON] = RETRIES_EXHAUSTED
            return
        n = made + 1
        delay = retry_delay(n, unit_ms, exception.retry_after_s)
        left_ms = ms_until_expiry(message, utcnow())
        if left_ms is not None:
            delay = min(delay, left_ms + 1)  # an expiring notification comes back when it expires
        error = str(exception)
        # Recorded before the publish, so the next attempt's timestamp is at least ``delay`` later.
        self._record(message, error)
        try:
            broker.enqueue(self._retry_of(message, n), delay=delay)
        except Exception:
            log.exception("retry %d could not be published; the message is dead-lettered instead", n)
            message.options[FAILURE_REASON] = RETRY_NOT_PUBLISHED
            return
        message.options[RETRY_SCHEDULED] = BACKOFF
        log.warning(
            "retry %d of %d in %d ms: %s",
            n,
            max_retries,
            delay,
            error,
            extra={"error": error, "retry": n, "delay_ms": delay},
        )

    def _record(self, message, error: str) -> None:
        nid = notification_of(message).get("notification_id")
        if not nid:
            return
        try:
            self.status.record(nid, outcome=RETRY_OUTCOME, status=None, error=error)
        except Exception:
            # The retry matters more than its line in the history: send it anyway.
            log.warning("attempt not recorded; the retry is scheduled anyway", exc_info=True)

    @staticmethod
    def _retry_of(message, n: int):
        args = message.args
        if args and isinstance(args[0], dict):
            args = ({**args[0], "retry_count": n}, *args[1:])
        return message.copy(args=tuple(args), options={RETRIES: n})
