"""Priority: the request's 1-10 reaches RabbitMQ's ordering, and workers prefetch little.

RabbitMQ orders only messages still waiting in the queue; whatever a worker has prefetched is
already out of the race. So the prefetch per queue is the ``WORKER_PREFETCH`` setting (2 by
default) instead of dramatiq's ``2 x threads``, and every publish carries the AMQP priority
(retries and deferrals too, which are publishes of copies).
"""

from __future__ import annotations

from dramatiq import Middleware

from messaging.messages import BROKER_PRIORITY, clamp_priority, notification_of


class Priority(Middleware):
    """Parameters:
    prefetch: messages a worker process prefetches per queue (``WORKER_PREFETCH``).
    """

    def __init__(self, *, prefetch: int) -> None:
        self.prefetch = prefetch

    def before_worker_boot(self, broker, worker):
        worker.queue_prefetch = self.prefetch

    def before_enqueue(self, broker, message, delay):
        if message.options.get(BROKER_PRIORITY) is None:
            message.options[BROKER_PRIORITY] = clamp_priority(notification_of(message).get("priority"))
