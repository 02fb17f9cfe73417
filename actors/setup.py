"""Builds a worker process's broker: settings, runtime, middleware, actors, in that order, and the
due-time loop that maintenance workers run beside their actors."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from actors import delivery, maintenance, webhooks
from actors.due_time import DueTimeLoop, RunDueTimeLoop
from actors.runtime import Runtime
from logs import setup_logging
from messaging.rabbitmq import HeraldBroker
from middleware.metrics import WorkerMetrics
from middleware.stack import build_stack
from settings import Settings


def build(settings: Settings, *, service: str = "worker") -> dramatiq.Broker:
    """A broker with Herald's middleware and actors declared; also made dramatiq's global broker.

    With no ``RABBITMQ_URL`` (``make run``'s embedded mode) the broker is dramatiq's in-process
    StubBroker, consumed by a worker in the same process.
    """
    setup_logging(service=service, level=settings.log_level)
    runtime = Runtime.from_settings(settings)
    stack = build_stack(runtime)
    if settings.rabbitmq_url is None:
        broker = StubBroker(middleware=stack)
    else:
        broker = HeraldBroker(url=settings.rabbitmq_url, middleware=stack)
    broker.runtime = runtime
    dramatiq.set_broker(broker)
    delivery.register(broker, runtime)
    webhooks.register(broker, runtime)
    maintenance.register(broker, runtime)
    metrics = next(m for m in broker.middleware if isinstance(m, WorkerMetrics))
    loop = DueTimeLoop(runtime=runtime, publish_many=_publish_many(broker), ended=metrics.ended)
    broker.add_middleware(RunDueTimeLoop(loop=loop))
    return broker


def _publish_many(broker: dramatiq.Broker):
    """The due-time loop's publish: confirms pipelined on RabbitMQ, one by one on ``make run``'s
    in-process broker."""
    if isinstance(broker, HeraldBroker):
        return broker.enqueue_many
    return lambda messages: [broker.enqueue(message) for message in messages]
