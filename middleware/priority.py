"""Priority: the request's 1-10 reaches RabbitMQ's ordering, and every worker thread has work.

RabbitMQ orders only messages still waiting in the queue; whatever a worker has prefetched is
already out of the race. The prefetch per queue is therefore the process's thread count plus a
small margin (``WORKER_PREFETCH_MARGIN``, 0 by default): the unacked messages are exactly the ones
being worked on, and each ack frees one slot, which RabbitMQ refills with the queue's highest
priority at that moment. So a slow provider keeps every thread busy while the out-of-order window
stays one message per free thread (README, "Tuning workers").

A process consuming several queues gets a prefetch per queue, and the surplus waits in dramatiq's
in-memory work queue; that queue is ordered here by AMQP priority too, so a high-priority message
does not wait behind a low one that arrived first on another queue. Delayed messages (retries,
waits) are held apart by dramatiq's delay-queue consumers and never take a thread, so their much
larger prefetch is left as dramatiq sets it. Every publish, retries and deferrals included,
carries the AMQP priority.
"""

from __future__ import annotations

from queue import PriorityQueue

from dramatiq import Middleware
from dramatiq.worker import _WorkQueueItem

from messaging.messages import BROKER_PRIORITY, clamp_priority, notification_of

#: Above any AMQP priority, so an actor's own priority still comes first in the work queue.
_AMQP_PRIORITIES = 256


class BrokerPriorityWorkQueue(PriorityQueue):
    """dramatiq's work queue ordered as RabbitMQ orders a queue: the actor's priority first (lower
    first, as dramatiq does), then the AMQP priority (higher first), then arrival.

    It relies on dramatiq 2.2's private ``_WorkQueueItem``; dramatiq is pinned for that reason.
    """

    def _put(self, item: _WorkQueueItem) -> None:
        amqp = int(item.message.options.get(BROKER_PRIORITY) or 0)
        super()._put(_WorkQueueItem(item.priority * _AMQP_PRIORITIES - amqp, item.message, item._queued_time))


class Priority(Middleware):
    """Parameters:
    margin: messages a worker process prefetches per queue beyond its threads
        (``WORKER_PREFETCH_MARGIN``); 0 keeps the out-of-order window smallest.
    """

    def __init__(self, *, margin: int) -> None:
        self.margin = margin

    def before_worker_boot(self, broker, worker):
        # Runs before dramatiq creates the consumers and worker threads, so both take these.
        worker.queue_prefetch = worker.worker_threads + self.margin
        worker.work_queue = BrokerPriorityWorkQueue()

    def before_enqueue(self, broker, message, delay):
        if message.options.get(BROKER_PRIORITY) is None:
            message.options[BROKER_PRIORITY] = clamp_priority(notification_of(message).get("priority"))
