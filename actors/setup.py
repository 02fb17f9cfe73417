"""Builds a worker process's broker: settings, runtime, middleware, actors, in that order."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from actors import delivery, maintenance, webhooks
from actors.runtime import Runtime
from logs import setup_logging
from messaging.rabbitmq import HeraldBroker
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
    return broker
