"""The contract's RabbitMQ topology (section 4): names, routing keys and queue arguments."""

from __future__ import annotations

import logging
import threading
import time

from dramatiq import Middleware

log = logging.getLogger(__name__)

EXCHANGE = "notifications.direct"
EMAIL_QUEUE = "email.queue"
PUSH_QUEUE = "push.queue"
FAILED_QUEUE = "failed.queue"
MAINTENANCE_QUEUE = "maintenance.queue"

#: Routing key of each queue bound to the exchange; the maintenance queue is not bound.
ROUTING_KEYS = {EMAIL_QUEUE: "email", PUSH_QUEUE: "push", FAILED_QUEUE: "failed"}
#: The channel (``notification_type``) each delivery queue serves.
QUEUE_OF_CHANNEL = {"email": EMAIL_QUEUE, "push": PUSH_QUEUE}
#: The actor that consumes each channel's queue.
ACTOR_OF_CHANNEL = {"email": "send_email", "push": "send_push"}

MAX_PRIORITY = 10
DELIVERY_QUEUE_ARGUMENTS = {
    "x-max-priority": MAX_PRIORITY,
    "x-message-ttl": 86_400_000,
    "x-max-length": 100_000,
    "x-overflow": "reject-publish",
    "x-dead-letter-exchange": EXCHANGE,
    "x-dead-letter-routing-key": ROUTING_KEYS[FAILED_QUEUE],
}
#: Delay queues (dramatiq's ``<q>.DQ``) dead-letter like their queue but have no TTL or length
#: limit: a message waiting out its backoff must neither expire nor be dropped.
DELAY_QUEUE_ARGUMENTS = {
    "x-max-priority": MAX_PRIORITY,
    "x-dead-letter-exchange": EXCHANGE,
    "x-dead-letter-routing-key": ROUTING_KEYS[FAILED_QUEUE],
}


def queue_arguments(queue: str) -> dict:
    """Arguments declared on a canonical queue, exactly as the contract lists them."""
    if queue in (EMAIL_QUEUE, PUSH_QUEUE):
        return dict(DELIVERY_QUEUE_ARGUMENTS)
    return {}


ALL_QUEUES = (EMAIL_QUEUE, PUSH_QUEUE, MAINTENANCE_QUEUE)


class DeclareTopology(Middleware):
    """Declares the whole topology when a worker boots, not only the queues it consumes, so an
    e-mail-only worker also creates ``push.queue`` and ``maintenance.queue`` (contract, section 1).

    It runs in a background thread and retries until RabbitMQ answers: a worker must start while
    RabbitMQ is away and catch up when it returns.
    """

    #: Seconds between attempts while RabbitMQ is unreachable (doubling, up to this cap).
    MAX_RETRY_S = 30.0

    def after_worker_boot(self, broker, worker):
        declare = getattr(broker, "declare_topology", None)
        if declare is not None:
            threading.Thread(target=self._until_declared, args=(declare,), name="declare-topology",
                             daemon=True).start()

    def _until_declared(self, declare) -> None:
        delay = 0.5
        while True:
            try:
                declare()
                log.info("RabbitMQ topology declared")
                return
            except Exception as exc:
                log.warning("RabbitMQ topology not declared yet (%s); retrying in %.1fs", type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.MAX_RETRY_S)
