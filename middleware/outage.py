"""OutageDelay: PostgreSQL or Redis away in a worker delays a message, it does not fail it.

A delivery needs its record and its claim; when either store cannot be reached the message is
re-published after :data:`OUTAGE_DELAY_MS` (not a retry: no attempt counted, no backoff spent)
and the consumed message is marked so the dead-letter middleware leaves it alone. It sits below
DeadLetter in the stack, so its ``after_process_message`` runs first (README, "Failure behaviour").
"""

from __future__ import annotations

import logging

from dramatiq import Middleware
from dramatiq.middleware import MiddlewareError

from messaging.messages import OUTAGE, RETRY_SCHEDULED
from models.unavailable import UNAVAILABLE

log = logging.getLogger(__name__)

#: How long a message waits out an outage before it is tried again.
OUTAGE_DELAY_MS = 5_000


class StoreAway(MiddlewareError):
    """A store away in a ``before_process_message`` hook. dramatiq logs any other exception a
    before hook raises and runs the actor all the same, so a hook that cannot check what it guards
    raises this (a ``MiddlewareError``, which dramatiq lets through): the actor does not run, and
    the message waits out the outage like one whose actor met it."""


class OutageDelay(Middleware):
    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not isinstance(exception, (*UNAVAILABLE, StoreAway)) or message.options.get(RETRY_SCHEDULED):
            return
        try:
            broker.enqueue(message.copy(), delay=OUTAGE_DELAY_MS)
        except Exception:
            log.exception("could not re-publish during an outage; dead-lettering instead")
            return
        message.options[RETRY_SCHEDULED] = OUTAGE
        log.warning(
            "a data store is unavailable (%s); the message waits %d ms", type(exception).__name__, OUTAGE_DELAY_MS
        )
