"""Priority: the request's 1-10 reaches RabbitMQ's ordering, and workers prefetch little.

RabbitMQ orders only messages still waiting in the queue; whatever a worker has prefetched is
already out of the race. So the prefetch per queue is the ``WORKER_PREFETCH`` setting (2 by
default) instead of dramatiq's ``2 x threads``, and every publish carries the AMQP priority.
"""

from __future__ import annotations

from dramatiq import Middleware

from middleware.log_context import notification_of
from middleware.topology import MAX_PRIORITY

DEFAULT_PRIORITY = 5


class Priority(Middleware):
    def __init__(self, *, prefetch: int) -> None:
        self.prefetch = prefetch

    def before_worker_boot(self, broker, worker):
        worker.queue_prefetch = self.prefetch

    def before_enqueue(self, broker, message, delay):
        if message.options.get("broker_priority") is None:
            priority = notification_of(message).get("priority", DEFAULT_PRIORITY)
            message.options["broker_priority"] = max(1, min(MAX_PRIORITY, int(priority)))
