"""Publishing notifications to RabbitMQ from the event loop, without blocking it.

Accepted sends are published on one channel of a connection that runs on the event loop, their
publisher confirms pipelined (:mod:`messaging.confirms`): a flush of the recorder, or a batch of a
thousand sends, costs about one round trip. Everything else (declaring the topology, queue depths,
the health check, a dead-letter replay) uses dramatiq's synchronous broker on a small thread pool,
whose threads each own a channel. The gateway declares the whole topology in the background at
start and keeps retrying while RabbitMQ is away; ``ready`` turns true once it has, and ``/health``
reports RabbitMQ down until then.
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

from messaging.confirms import ConfirmingPublisher, NotConfirmed
from messaging.messages import CORRELATION_ID, delivery_message
from messaging.rabbitmq import HeraldBroker, declare_until_done, message_count, publication, with_defaults
from messaging.topology import EMAIL_QUEUE

log = logging.getLogger(__name__)

#: Seconds between a refused publish and the 503 at the latest (README, "Failure behaviour").
PUBLISH_TIMEOUT_S = 5.0
#: Threads of the synchronous broker; each holds one AMQP connection.
THREADS = 4


class PublishError(Exception):
    """The broker did not confirm the message: nothing may be reported as accepted."""


class Publisher:
    def __init__(self, *, broker: dramatiq.Broker, url: str | None = None) -> None:
        """``url`` (RabbitMQ's) turns on the pipelined path; without it (``make run``'s in-process
        broker) every message goes through ``broker`` on a thread."""
        self.broker = broker
        self.confirming = ConfirmingPublisher(with_defaults(url), timeout_s=PUBLISH_TIMEOUT_S) if url else None
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

    async def publish_many(self, messages: list[Message]) -> list[Exception | None]:
        """Publish every message persistently and wait for the broker's confirms; per message, None
        or the :class:`PublishError` that refused it. A message that came back unroutable (its
        queue was deleted) is published again through the broker, which declares the queue first;
        until the topology is declared, every message goes that way."""
        if self.confirming is None or not self.ready:
            return list(await asyncio.gather(*(self._publish_on_thread(message) for message in messages)))
        confirmed = await self.confirming.publish_many([publication(message) for message in messages])
        outcomes: list[Exception | None] = [None if c is None else PublishError(str(c)) for c in confirmed]
        returned = [i for i, c in enumerate(confirmed) if isinstance(c, NotConfirmed) and c.unroutable]
        again = await asyncio.gather(*(self._publish_on_thread(messages[i]) for i in returned))
        for i, outcome in zip(returned, again, strict=True):
            outcomes[i] = outcome
        return outcomes

    async def _publish_on_thread(self, message: Message) -> Exception | None:
        """A gateway shutting down (its threads stopped, queued publishes cancelled) refuses what
        it could not publish."""
        try:
            return await self.run(self._try_publish, message)
        except (RuntimeError, CancelledError, asyncio.CancelledError):  # the executor was shut down
            return PublishError("shutting down")

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
        if self.confirming is not None:
            await self.confirming.close()
        await self.run(self.broker.close)
        self.executor.shutdown(wait=False, cancel_futures=True)
