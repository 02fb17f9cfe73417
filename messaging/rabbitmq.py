"""dramatiq's RabbitMQ broker, shaped to Herald's topology, and the reads every monitor shares.

dramatiq declares one queue per actor queue plus ``.DQ`` (delays) and ``.XQ`` (dead letters) and
publishes through the default exchange. Herald needs the ``notifications.direct`` exchange with
bound queues carrying Herald's arguments, one shared ``failed.queue`` instead of the
``.XQ`` queues, and AMQP properties (priority, correlation id, message id, timestamp, content
type) on every message. The overrides below are of dramatiq 2.2's private hooks, so dramatiq is
pinned; re-read ``dramatiq/brokers/rabbitmq.py`` on upgrade.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import msgspec
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import MAX_ENQUEUE_ATTEMPTS, RabbitmqBroker
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from messaging import topology as queues
from messaging.confirms import NotConfirmed, Publication, publish_all_blocking
from messaging.messages import BROKER_PRIORITY, CORRELATION_ID, ETA

log = logging.getLogger(__name__)

#: Seconds :meth:`HeraldBroker.enqueue_many` waits for the confirms of one call.
ENQUEUE_MANY_TIMEOUT_S = 10.0

#: Connection defaults added to the URL unless it sets them: fail fast when RabbitMQ is away (a
#: publish must turn into a 503 within seconds) and never block forever on a memory alarm.
URL_DEFAULTS = {
    "heartbeat": "60",
    "blocked_connection_timeout": "5",
    "connection_attempts": "1",
    "socket_timeout": "3",
    "stack_timeout": "5",
}


def with_defaults(url: str) -> str:
    parsed = urlparse(url)
    query = dict(parse_qsl(parsed.query))
    for key, value in URL_DEFAULTS.items():
        query.setdefault(key, value)
    return urlunparse(parsed._replace(query=urlencode(query)))


def target(queue_name: str) -> tuple[str, str]:
    """(exchange, routing key) for a publish: bound queues through the exchange."""
    if queue_name in queues.ROUTING_KEYS:
        return queues.EXCHANGE, queues.ROUTING_KEYS[queue_name]
    return "", queue_name


def properties(message: Message) -> pika.BasicProperties:
    """The AMQP properties every Herald message carries (persistent, with its priority)."""
    return pika.BasicProperties(
        delivery_mode=2,
        priority=message.options.get(BROKER_PRIORITY),
        correlation_id=message.options.get(CORRELATION_ID),
        message_id=message.message_id,
        timestamp=message.message_timestamp // 1000,
        content_type="application/json",
    )


#: The body of a message as dramatiq's JSON encoder writes it (what workers decode), with msgspec
#: rather than the json module: several times faster for the gateway's thousands per second.
_ENCODER = msgspec.json.Encoder()


def publication(message: Message) -> Publication:
    """A message due now as one ``basic.publish`` for :class:`messaging.confirms.ConfirmingPublisher`,
    exactly as :meth:`HeraldBroker.enqueue` would publish it."""
    exchange, routing_key = target(message.queue_name)
    return Publication(exchange, routing_key, _ENCODER.encode(message.asdict()), properties(message))


class HeraldBroker(RabbitmqBroker):
    """A RabbitmqBroker that declares and publishes through Herald's topology."""

    def __init__(self, *, url: str, middleware=None) -> None:
        self.url = with_defaults(url)
        super().__init__(url=self.url, confirm_delivery=True, max_priority=queues.MAX_PRIORITY, middleware=middleware)

    # -- declarations -------------------------------------------------------------------------

    def declare_topology(self) -> None:
        """Create every exchange, queue and binding now (not lazily)."""
        for queue in queues.ALL_QUEUES:
            self.declare_queue(queue, ensure=True)
            self.queues_pending.add(queue)
            self._ensure_queue(queue)

    def _declare_queue(self, queue_name):
        channel = self.channel
        channel.exchange_declare(exchange=queues.EXCHANGE, exchange_type="direct", durable=True)
        ok = channel.queue_declare(queue=queue_name, durable=True, arguments=queues.queue_arguments(queue_name))
        if queue_name in queues.ROUTING_KEYS:
            channel.queue_bind(queue=queue_name, exchange=queues.EXCHANGE, routing_key=queues.ROUTING_KEYS[queue_name])
        return ok

    def _declare_dq_queue(self, queue_name):
        arguments = queues.delay_queue_arguments(queue_name)
        return self.channel.queue_declare(queue=dq_name(queue_name), durable=True, arguments=arguments)

    def _declare_xq_queue(self, queue_name):
        channel = self.channel
        ok = channel.queue_declare(queue=queues.FAILED_QUEUE, durable=True, arguments={})
        channel.queue_bind(
            queue=queues.FAILED_QUEUE, exchange=queues.EXCHANGE, routing_key=queues.ROUTING_KEYS[queues.FAILED_QUEUE]
        )
        return ok

    def flush(self, queue_name: str) -> None:
        for name in (queue_name, dq_name(queue_name)):
            try:
                self.channel.queue_purge(name)
            except pika.exceptions.AMQPChannelError:
                del self.channel

    # -- publishing ---------------------------------------------------------------------------

    def enqueue_many(self, messages: list[Message]) -> None:
        """Publish messages due now with their confirms pipelined on one channel (thousands take
        about as long as a few), each as :meth:`enqueue` would; one that comes back unroutable goes
        through :meth:`enqueue`, which declares its queue first. No broker middleware runs (the
        due-time loop, its caller, needs none).

        Raises:
            ConnectionClosed: a message was not confirmed (some others may have been).
        """
        outcomes = publish_all_blocking(self.url, [publication(m) for m in messages], timeout_s=ENQUEUE_MANY_TIMEOUT_S)
        for message, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, NotConfirmed) and outcome.unroutable:
                self.enqueue(message)
            elif outcome is not None:
                raise ConnectionClosed(outcome)

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        """dramatiq's enqueue (2.2.1), publishing via the exchange with the documented AMQP properties."""
        canonical = message.queue_name
        queue_name = canonical
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(queue_name=queue_name, options={ETA: current_millis() + delay})
        exchange, routing_key = target(queue_name)
        attempts = 0
        while True:
            try:
                self.declare_queue(canonical, ensure=True)
                self.emit_before("enqueue", message, delay)
                self.channel.basic_publish(
                    exchange=exchange,
                    routing_key=routing_key,
                    body=message.encode(),
                    properties=properties(message),
                    mandatory=True,
                )
                self.emit_after("enqueue", message, delay)
                return message
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as e:
                del self.connection
                if isinstance(e, pika.exceptions.UnroutableError):
                    self.queues_pending.add(q_name(queue_name))
                attempts += 1
                # A nack is RabbitMQ refusing the message (full queue): retrying will not help.
                if attempts >= MAX_ENQUEUE_ATTEMPTS or isinstance(e, pika.exceptions.NackError):
                    raise ConnectionClosed(e) from None
                if isinstance(e, pika.exceptions.AMQPConnectionError) and attempts >= 2:
                    raise ConnectionClosed(e) from None


#: Seconds between attempts to declare the topology while RabbitMQ is unreachable (doubling, up to this).
DECLARE_RETRY_MAX_S = 10.0


def declare_until_done(declare: Callable[[], None], *, stop: threading.Event | None = None) -> bool:
    """Call ``declare`` until it succeeds, doubling the pause; False if ``stop`` was set first.

    Every process must start while RabbitMQ is away and catch up when it returns, so the gateway
    (in a publishing thread) and the workers (in a background thread) both declare through this.
    """
    stop = stop or threading.Event()
    delay = 0.5
    while not stop.is_set():
        try:
            declare()
        except Exception as exc:
            log.warning("RabbitMQ topology not declared yet (%s); retrying in %.1fs", type(exc).__name__, delay)
            stop.wait(delay)
            delay = min(delay * 2, DECLARE_RETRY_MAX_S)
            continue
        log.info("RabbitMQ topology declared")
        return True
    return False


def message_count(channel, name: str) -> int:
    """Ready messages in one queue, by a passive declare on ``channel`` (which RabbitMQ closes if
    the queue does not exist: ``pika.exceptions.ChannelClosedByBroker``)."""
    return channel.queue_declare(queue=name, passive=True).method.message_count


def queue_depths(broker, names: Iterable[str] = queues.WATCHED_QUEUES) -> dict[str, int]:
    """Ready messages in each queue, on the calling thread's channel of ``broker``.

    A passive declare is the cheapest way to ask: it creates nothing. A queue not declared yet
    holds nothing and counts 0 (RabbitMQ closes the channel over it, so a fresh one is opened). With
    dramatiq's in-process StubBroker (``make run``), its own queues are counted.

    Raises:
        pika.exceptions.AMQPError: RabbitMQ cannot be asked now (the connection is dropped, so the
            next use opens a new one).
    """
    stub_queues = getattr(broker, "queues", None)
    if isinstance(stub_queues, dict):
        return {name: stub_queues[name].qsize() if name in stub_queues else 0 for name in names}
    out: dict[str, int] = {}
    for name in names:
        try:
            out[name] = message_count(broker.channel, name)
        except pika.exceptions.ChannelClosedByBroker:
            del broker.channel
            out[name] = 0
        except pika.exceptions.AMQPError:
            del broker.connection
            raise
    return out
