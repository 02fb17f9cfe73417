"""Publishing notifications to RabbitMQ from the event loop, without blocking it.

pika is synchronous: each publish (with its publisher confirm) runs in a small thread pool whose
threads each own a channel (dramatiq's broker keeps connections per thread). The gateway declares
the contract's topology in the background at start and keeps retrying while RabbitMQ is away;
``ready`` turns true once it has, and ``/health`` reports RabbitMQ down until then.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import CancelledError, ThreadPoolExecutor

import dramatiq
import pika.exceptions
from dramatiq.errors import BrokerError
from dramatiq.message import Message

from middleware.rabbitmq import HeraldBroker
from middleware.topology import ACTOR_OF_CHANNEL, EMAIL_QUEUE, QUEUE_OF_CHANNEL

log = logging.getLogger(__name__)

#: Seconds the contract allows between a refused publish and the 503.
PUBLISH_TIMEOUT_S = 5.0
#: Publishing threads; each holds one AMQP connection. A batch of accepted sends is published
#: across them at once (:meth:`Publisher.publish_many_blocking`).
THREADS = 16


class PublishError(Exception):
    """The broker did not confirm the message: nothing may be reported as accepted."""


class Publisher:
    def __init__(self, *, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self.executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="publish")
        self.ready = False
        self._declaring: asyncio.Task | None = None

    def start(self) -> None:
        self._declaring = asyncio.get_running_loop().create_task(self._declare_until_done())

    async def _declare_until_done(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._run(self._declare)
                self.ready = True
                log.info("RabbitMQ topology declared")
                return
            except Exception as exc:
                log.warning("RabbitMQ not ready, retrying in %.1fs: %s", delay, type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _declare(self) -> None:
        if isinstance(self.broker, HeraldBroker):
            self.broker.declare_topology()

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def message(self, *, channel: str, body: dict, priority: int, correlation_id: str) -> Message:
        return Message(
            queue_name=QUEUE_OF_CHANNEL[channel], actor_name=ACTOR_OF_CHANNEL[channel], args=(body,),
            kwargs={}, options={"broker_priority": priority, "correlation_id": correlation_id},
            message_id=body["notification_id"],
        )

    def publish_blocking(self, message: Message) -> None:
        """Publish persistently and wait for the broker's confirm, on the calling (worker) thread.

        The connection's own timeouts (``middleware.rabbitmq.URL_DEFAULTS``) bound the wait, so a
        refused or unreachable broker surfaces as :class:`PublishError` within seconds.
        """
        try:
            self.broker.enqueue(message)
        except (BrokerError, pika.exceptions.AMQPError, OSError) as exc:
            raise PublishError(type(exc).__name__) from exc

    def publish_many_blocking(self, messages: list[Message]) -> list[Exception | None]:
        """Publish each message on its own publishing thread (and channel) at once, waiting for
        all; per message, None or the error that refused it. A channel waits for each confirm
        before its next publish, so a batch published on one channel would wait for the broker's
        confirms one after another; across channels they arrive together. A gateway shutting down
        (its threads stopped, queued publishes cancelled) refuses what it could not publish."""
        futures = []
        for message in messages:
            try:
                futures.append(self.executor.submit(self._try_publish, message))
            except RuntimeError:  # the executor was shut down
                futures.append(None)
        outcomes: list[Exception | None] = []
        for future in futures:
            try:
                outcomes.append(future.result() if future is not None else PublishError("shutting down"))
            except CancelledError:
                outcomes.append(PublishError("shutting down"))
        return outcomes

    def _try_publish(self, message: Message) -> Exception | None:
        try:
            self.publish_blocking(message)
        except Exception as exc:
            return exc
        return None

    async def ping(self) -> bool:
        """True when the topology is declared and a channel answers now."""
        if not self.ready:
            return False
        if not isinstance(self.broker, HeraldBroker):
            return True

        def check() -> bool:
            try:
                self.broker.channel.queue_declare(queue=EMAIL_QUEUE, passive=True)
                return True
            except pika.exceptions.AMQPError:
                del self.broker.connection
                return False

        return await self._run(check)

    async def close(self) -> None:
        if self._declaring is not None:
            self._declaring.cancel()
        await self._run(self.broker.close)
        self.executor.shutdown(wait=False, cancel_futures=True)
