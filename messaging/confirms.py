"""Publishing many messages on one channel with their publisher confirms pipelined.

A pika ``BlockingChannel`` in confirm mode waits for each message's confirm before it publishes
the next, so N messages cost N round trips to RabbitMQ; spreading them over threads with a
connection each only moves the cost into thread switches. On one channel of an
``AsyncioConnection`` the messages go out back to back and RabbitMQ confirms them together (one
``Basic.Ack`` with ``multiple`` covers many), so a batch costs about one round trip and no thread,
whatever its size (README, "Batches").

Each message gets its own outcome: ``None`` once confirmed, else the reason it does not count as
published: a nack (a full queue refusing it), a return (no queue bound for it: it was ``mandatory``),
the channel or connection closing first, or no confirm within the timeout. A message whose outcome
is not ``None`` may still have reached a queue (a confirm lost with its connection); the caller
treats it as refused and withdraws its record, as for any unconfirmed publish (ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.adapters.asyncio_connection import AsyncioConnection

log = logging.getLogger(__name__)


class NotConfirmed(Exception):
    """RabbitMQ did not confirm the message; ``unroutable`` when it came back as a return."""

    def __init__(self, reason: str, *, unroutable: bool = False) -> None:
        super().__init__(reason)
        self.unroutable = unroutable


@dataclass(frozen=True)
class Publication:
    """One ``basic.publish``: where it goes and what it carries."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties


class _Channel:
    """One open channel in confirm mode and its messages awaiting a confirm, by delivery tag (tags
    count from 1 per channel, so they belong to it; a new channel starts its own)."""

    def __init__(self, connection: AsyncioConnection, channel) -> None:
        self.connection = connection
        self.channel = channel
        self.next_tag = 0
        self.pending: dict[int, tuple[asyncio.Future, str | None]] = {}
        self.closed = False

    def publish(self, publication: Publication) -> asyncio.Future:
        self.next_tag += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_tag] = (future, publication.properties.message_id)
        self.channel.basic_publish(
            publication.exchange, publication.routing_key, publication.body, publication.properties, mandatory=True
        )
        return future

    def on_confirm(self, frame) -> None:
        method = frame.method
        outcome = None if isinstance(method, pika.spec.Basic.Ack) else NotConfirmed("nacked by RabbitMQ")
        if method.multiple:
            tags = [tag for tag in self.pending if tag <= method.delivery_tag]  # in publish order
        else:
            tags = [method.delivery_tag] if method.delivery_tag in self.pending else []
        for tag in tags:
            _settle(self.pending.pop(tag)[0], outcome)

    def on_return(self, _channel, _method, properties, _body) -> None:
        """A mandatory message no queue took; its ack follows and must not count it published."""
        for future, message_id in self.pending.values():
            if message_id == properties.message_id:
                _settle(future, NotConfirmed("returned: no queue is bound for it", unroutable=True))

    def fail_all(self, reason: str) -> None:
        self.closed = True
        for future, _ in self.pending.values():
            _settle(future, NotConfirmed(reason))
        self.pending.clear()


def _settle(future: asyncio.Future, outcome: Exception | None) -> None:
    if not future.done():
        future.set_result(outcome)


class ConfirmingPublisher:
    """A lazily opened channel on the running loop; reopened after any close."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self.parameters = pika.URLParameters(url)
        self.timeout_s = timeout_s
        self._current: _Channel | None = None
        self._opening: asyncio.Future | None = None

    async def publish_many(self, publications: list[Publication]) -> list[Exception | None]:
        """Publish all, then wait (up to the timeout) for their confirms; an outcome per message."""
        if not publications:
            return []
        try:
            current = await asyncio.wait_for(self._channel(), self.timeout_s)
        except (TimeoutError, pika.exceptions.AMQPError, OSError) as exc:
            return [NotConfirmed(f"no channel: {type(exc).__name__}")] * len(publications)
        try:
            futures = [current.publish(publication) for publication in publications]
        except (pika.exceptions.AMQPError, OSError) as exc:  # closed under us: nothing counts
            current.fail_all(f"publish failed: {type(exc).__name__}")
            self._current = None
            return [NotConfirmed(f"publish failed: {type(exc).__name__}")] * len(publications)
        await asyncio.wait(futures, timeout=self.timeout_s)
        return [future.result() if future.done() else NotConfirmed("no confirm in time") for future in futures]

    async def _channel(self) -> _Channel:
        if self._current is not None and not self._current.closed:
            return self._current
        if self._current is not None:  # the channel closed (a broker error) but maybe not its connection
            connection, self._current = self._current.connection, None
            if not connection.is_closed and not connection.is_closing:
                connection.close()
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(self._open())
        return await asyncio.shield(self._opening)

    async def _open(self) -> _Channel:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future = loop.create_future()
        holder: dict[str, _Channel] = {}

        def failed(reason: str) -> None:
            if not ready.done():
                ready.set_exception(pika.exceptions.AMQPConnectionError(reason))

        def connection_closed(_connection, exc) -> None:
            if "channel" in holder:
                holder["channel"].fail_all(f"connection closed: {type(exc).__name__}")
            failed(f"connection closed: {exc}")

        def channel_open(channel) -> None:
            current = _Channel(connection, channel)
            holder["channel"] = current
            channel.add_on_close_callback(lambda _ch, exc: current.fail_all(f"channel closed: {exc}"))
            channel.add_on_return_callback(current.on_return)
            channel.confirm_delivery(current.on_confirm, callback=lambda _frame: _settle(ready, None))

        connection = AsyncioConnection(
            self.parameters,
            on_open_callback=lambda conn: conn.channel(on_open_callback=channel_open),
            on_open_error_callback=lambda _conn, exc: failed(f"cannot connect: {exc}"),
            on_close_callback=connection_closed,
            custom_ioloop=loop,
        )
        try:
            await ready
        except BaseException:
            if not connection.is_closed and not connection.is_closing:
                connection.close()
            raise
        self._current = holder["channel"]
        return self._current

    async def close(self) -> None:
        current, self._current = self._current, None
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if current is None or current.connection.is_closed or current.connection.is_closing:
            return
        current.connection.close()
        for _ in range(50):  # up to a second for the close handshake
            if current.connection.is_closed:
                return
            await asyncio.sleep(0.02)


def publish_all_blocking(url: str, publications: list[Publication], *, timeout_s: float) -> list[Exception | None]:
    """:meth:`ConfirmingPublisher.publish_many` from synchronous code (a worker's thread), on a
    connection of its own opened for the call: a connection that idles between calls on a loop
    nobody runs would miss its heartbeats."""

    async def publish() -> list[Exception | None]:
        publisher = ConfirmingPublisher(url, timeout_s=timeout_s)
        try:
            return await publisher.publish_many(publications)
        finally:
            await publisher.close()

    return asyncio.run(publish())
