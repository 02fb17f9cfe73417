"""Herald's RabbitMQ topology: names, routing keys and queue arguments (README, "Deploying").

The one place these names live; the broker declares them, the gateway and the workers publish and
consume by them, and the monitors read their depths.
"""

from __future__ import annotations

from models.notification import MAX_PRIORITY

EXCHANGE = "notifications.direct"
EMAIL_QUEUE = "email.queue"
PUSH_QUEUE = "push.queue"
FAILED_QUEUE = "failed.queue"
MAINTENANCE_QUEUE = "maintenance.queue"
#: Webhook deliveries (README, "Webhooks"): apart from the notifications, so webhook work never
#: waits in front of, or behind, a notification; no priority, TTL or dead-lettering.
WEBHOOKS_QUEUE = "webhooks.queue"

#: Routing key of each queue bound to the exchange; the maintenance queue is not bound.
ROUTING_KEYS = {EMAIL_QUEUE: "email", PUSH_QUEUE: "push", FAILED_QUEUE: "failed", WEBHOOKS_QUEUE: "webhooks"}
#: The queues carrying notifications: priority, TTL, length limit, dead-lettering to failed.queue.
DELIVERY_QUEUES = (EMAIL_QUEUE, PUSH_QUEUE)
#: The channel (``notification_type``) each delivery queue serves.
QUEUE_OF_CHANNEL = {"email": EMAIL_QUEUE, "push": PUSH_QUEUE}
#: The actor that consumes each channel's queue.
ACTOR_OF_CHANNEL = {"email": "send_email", "push": "send_push"}
#: The actor that sends one webhook delivery.
WEBHOOK_ACTOR = "deliver_webhook"
#: The channel each delivery actor serves (the inverse of :data:`ACTOR_OF_CHANNEL`).
CHANNEL_OF_ACTOR = {actor: channel for channel, actor in ACTOR_OF_CHANNEL.items()}
#: Queues whose depth the monitors report: the two delivery queues, the dead letters, the webhooks.
WATCHED_QUEUES = (EMAIL_QUEUE, PUSH_QUEUE, FAILED_QUEUE, WEBHOOKS_QUEUE)

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
    """Arguments declared on a canonical queue; RabbitMQ refuses a re-declare that differs."""
    if queue in DELIVERY_QUEUES:
        return dict(DELIVERY_QUEUE_ARGUMENTS)
    return {}


def delay_queue_arguments(queue: str) -> dict:
    """Arguments of a canonical queue's delay queue (``<queue>.DQ``)."""
    if queue in DELIVERY_QUEUES:
        return dict(DELAY_QUEUE_ARGUMENTS)
    return {}


#: The canonical queues every process declares at start (``failed.queue`` comes with them).
ALL_QUEUES = (EMAIL_QUEUE, PUSH_QUEUE, MAINTENANCE_QUEUE, WEBHOOKS_QUEUE)
