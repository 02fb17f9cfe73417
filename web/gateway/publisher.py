"""Publishing notifications to RabbitMQ from the event loop, without blocking it.

pika is synchronous: each publish (with its publisher confirm) runs in a small thread pool whose
threads each own a channel (dramatiq's broker keeps connections per thread). The gateway declares
the whole topology in the background at start and keeps retrying while RabbitMQ is away;
``ready`` turns true once it has, and ``/health`` reports RabbitMQ down until then.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import CancelledError, ThreadPoolExecutor

import dramatiq
import pika.exceptions
from dramatiq.errors import BrokerError
from dramatiq.message import Message

from messaging.messages import CORRELATION_ID, delivery_message
from messaging.rabbitmq import HeraldBroker, declare_until_done, message_count
from messaging.topology import EMAIL_QUEUE

log = logging.getLogger(__name__)

#: Seconds between a refused publish and the 503 at the latest (README, "Failure behaviour").
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
        self._stop = threading.Event()

    def start(self) -> None:
        """Declare the topology in the background (on a publishing thread); ``ready`` once done."""
        self._declaring = asyncio.get_running_loop().create_task(self._declare())

    async def _declare(self) -> None:
        declared = not isinstance(self.broker, HeraldBroker) or await self.run(
            declare_until_done, self.broker.declare_topology, stop=self._stop
        )
        self.ready = declared

    async def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on a publishing thread, whose channel it may use."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    @staticmethod
    def message(*, body: dict, correlation_id: str) -> Message:
        """The delivery message of an accepted send."""
        return delivery_message(body=body, options={CORRELATION_ID: correlation_id})

    def publish_blocking(self, message: Message) -> None:
        """Publish persistently and wait for the broker's confirm, on the calling (worker) thread.

        The connection's own timeouts (``messaging.rabbitmq.URL_DEFAULTS``) bound the wait, so a
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
                message_count(self.broker.channel, EMAIL_QUEUE)
                return True
            except pika.exceptions.AMQPError:
                del self.broker.connection
                return False

        return await self.run(check)

    async def close(self) -> None:
        self._stop.set()
        if self._declaring is not None:
            self._declaring.cancel()
        await self.run(self.broker.close)
        self.executor.shutdown(wait=False, cancel_futures=True)
