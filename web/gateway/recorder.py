"""Recording accepted sends in batches: the row, the publish, the idempotency record.

Under load many sends pass their checks within the same few milliseconds. Each then needs the same
three steps, in this order: commit its ``pending`` row (before any worker can see the message),
publish it with a publisher confirm, and store its idempotent response. Done one send at a time,
the thread hop, the INSERT's commit, the confirm and the Redis round trip are paid per send, and on
a small machine they cost more than the send itself. The recorder queues sends and lets a few
flushes run at once; a flush takes whatever has queued meanwhile (up to :data:`MAX_BATCH`, so a
whole batch request) and does it with one INSERT on a database thread, one pipelined publish on
the event loop and one Redis pipeline. An idle gateway still records a lone send at once: batching
only happens when sends are already waiting.

Each send gets its own outcome: ``True`` (recorded and published), ``False`` (the row existed
already: the same request was accepted before and its idempotency key was lost), or the error
that refused it; the rows of refused publishes are deleted again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import peewee
from aiohttp import web
from dramatiq.message import Message

from models.dao import notifications as dao
from web.common.app import in_db
from web.gateway.guards import Idempotency
from web.gateway.publisher import Publisher
from web.gateway.schemas import MAX_BATCH as MAX_BATCH_ITEMS

log = logging.getLogger(__name__)

#: Most sends one flush records (one INSERT statement, one publish, one Redis pipeline): the
#: largest batch request, so its accepted items are recorded together.
MAX_BATCH = MAX_BATCH_ITEMS
#: Flushes in flight at once; each holds a database thread while its INSERT runs.
FLUSHES = 4


@dataclass(frozen=True)
class Entry:
    row: dict
    #: The delivery message, or ``None`` for a scheduled notification (its row holds the payload).
    message: Message | None
    #: (caller, request_id, body digest, response): the idempotency record once published.
    record: tuple[str, str, str, dict]


class Recorder:
    def __init__(
        self, *, app: web.Application, publisher: Publisher, idempotency: Idempotency, flushes: int = FLUSHES
    ) -> None:
        self.app = app
        self.publisher = publisher
        self.idempotency = idempotency
        self.flushes = flushes
        self._waiting: list[tuple[Entry, asyncio.Future]] = []
        self._running: set[asyncio.Task] = set()

    async def record(self, entry: Entry, *, timeout_s: float) -> bool:
        """Record and publish ``entry``; False when its row existed already; :class:`TimeoutError`
        after ``timeout_s``. Giving up the wait does not undo a flush already under way: the flush
        withdraws what it recorded for a caller that stopped waiting (:meth:`_withdraw`). A timer
        per send, not ``asyncio.wait_for``, which would cost a task per send."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        timer = loop.call_later(timeout_s, _time_out, future)
        self._waiting.append((entry, future))
        if len(self._running) < self.flushes:
            task = loop.create_task(self._drain())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        try:
            return await future
        finally:
            timer.cancel()

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            try:
                outcomes = await self._write([entry for entry, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # the INSERT itself failed: every send of the batch is refused
                outcomes = [exc] * len(batch)
            abandoned = []
            for (entry, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller stopped waiting (timeout) and answered 503
                    if outcome is True:
                        abandoned.append(entry)
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            if abandoned:
                await self._withdraw(abandoned)

    async def _withdraw(self, entries: list[Entry]) -> None:
        """Sends recorded after their caller was answered 503 (the publish outlasted the wait): their
        rows and idempotency records are deleted, so a worker drops their message (no record) and a
        retry of the request is a new send, as the 503 said."""
        ids = [entry.row["notification_id"] for entry in entries]
        try:
            await in_db(self.app, dao.delete_many, ids, atomic=False)
            keys = [self.idempotency.keys.request(entry.record[0], entry.record[1]) for entry in entries]
            await self.idempotency.redis.delete(*keys)
        except Exception as exc:
            log.error("sends answered 503 but recorded %s not withdrawn: %s", ids, type(exc).__name__)

    async def _write(self, entries: list[Entry]) -> list[bool | Exception]:
        """Insert the rows, publish the new ones, record their responses."""
        inserted = await in_db(self.app, dao.create_many, [entry.row for entry in entries], atomic=False)
        fresh = [entry for entry in entries if entry.row["notification_id"] in inserted and entry.message]
        refusals = iter(await self.publisher.publish_many([entry.message for entry in fresh]))
        outcomes: list[bool | Exception] = []
        published: list[tuple[str, str, str, dict]] = []
        unpublished: list[str] = []
        for entry in entries:
            if entry.row["notification_id"] not in inserted:
                outcomes.append(False)
            elif entry.message is None:  # scheduled: the due-time loop publishes it when it falls due
                published.append(entry.record)
                outcomes.append(True)
            elif (refused := next(refusals)) is not None:
                unpublished.append(entry.row["notification_id"])
                outcomes.append(refused)
            else:
                published.append(entry.record)
                outcomes.append(True)
        if unpublished:
            try:
                await in_db(self.app, dao.delete_many, unpublished, atomic=False)
            except peewee.PeeweeException as exc:
                log.error("rows of unpublished notifications %s not deleted: %s", unpublished, exc)
        await self.idempotency.complete_many(published)
        return outcomes


def _time_out(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError("not recorded and published in time"))
