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
that refused it; the rows of refused publishes are withdrawn under the send claim
(:meth:`Recorder._withdraw`), so a send answered 503 is never delivered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
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
#: How long a withdrawal may hold the send claims of its notifications: a DELETE, bounded. Long,
#: so a slow database cannot let a worker in between the claim and the delete.
WITHDRAW_CLAIM_MS = 60_000


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
        #: Sends this flush answers whatever their timer says: those still waited for once their
        #: INSERT returned. From then on their rows exist and their messages may go out, so only the
        #: flush knows the true answer.
        self._answering: set[asyncio.Future] = set()

    async def record(self, entry: Entry, *, timeout_s: float) -> bool:
        """Record and publish ``entry``; False when its row existed already; :class:`TimeoutError`
        when its INSERT had not returned after ``timeout_s`` (its row, if written later, is deleted
        and it is never published). A send whose INSERT has returned waits for the publish's
        confirm or refusal, which the publisher bounds: answering 503 before knowing could leave a
        message in a queue for a send the caller was told to repeat. A timer per send, not
        ``asyncio.wait_for``, which would cost a task per send."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        timer = loop.call_later(timeout_s, self._time_out, future)
        self._waiting.append((entry, future))
        if len(self._running) < self.flushes:
            task = loop.create_task(self._drain())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        try:
            return await future
        finally:
            timer.cancel()

    def _time_out(self, future: asyncio.Future) -> None:
        if not future.done() and future not in self._answering:
            future.set_exception(TimeoutError("not recorded and published in time"))

    async def _drain(self) -> None:
        while self._waiting:
            self._waiting = [(entry, future) for entry, future in self._waiting if not future.done()]
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            if not batch:
                return
            try:
                outcomes = await self._write(batch)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # the INSERT itself failed: every send of the batch is refused
                outcomes = [exc] * len(batch)
            finally:
                self._answering.difference_update(future for _, future in batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # answered 503 before its INSERT returned: nothing of it remains
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _write(self, batch: list[tuple[Entry, asyncio.Future]]) -> list[bool | Exception]:
        """Insert the rows, publish the new ones whose callers still wait, record their responses."""
        inserted = await in_db(self.app, dao.create_many, [entry.row for entry, _ in batch], atomic=False)
        # No await between here and the publish: every caller still waiting is now answered by this
        # flush, and every caller already answered 503 gets nothing published.
        self._answering.update(future for _, future in batch if not future.done())
        gave_up = {entry.row["notification_id"] for entry, future in batch if future.done()} & inserted
        fresh = [
            entry
            for entry, future in batch
            if entry.message and not future.done() and entry.row["notification_id"] in inserted
        ]
        refused = await self.publisher.publish_many([entry.message for entry in fresh])
        if gave_up:
            await self._delete(list(gave_up))
        refusals = {entry.row["notification_id"]: r for entry, r in zip(fresh, refused, strict=True) if r}
        withdrawn = await self._withdraw(list(refusals)) if refusals else set()
        outcomes: list[bool | Exception] = []
        published: list[tuple[str, str, str, dict]] = []
        for entry, _ in batch:
            nid = entry.row["notification_id"]
            if nid not in inserted:
                outcomes.append(False)
            elif nid in gave_up:
                outcomes.append(TimeoutError("answered before its row was written"))
            elif nid in withdrawn:
                outcomes.append(refusals[nid])
            else:  # published, scheduled, or refused but already taken by a worker
                published.append(entry.record)
                outcomes.append(True)
        await self.idempotency.complete_many(published)
        return outcomes

    async def _withdraw(self, notification_ids: list[str]) -> set[str]:
        """Delete the rows of sends whose publish was not confirmed; the ids deleted.

        An unconfirmed message may still have reached a queue (its confirm lost with the
        connection), and a worker may be about to send it. The send claim decides, as for a cancel
        (``web/gateway/cancelling.py``): the rows whose claim is taken here are deleted while still
        ``pending``, so a worker that gets the message later finds no record and drops it; a claim
        held by a worker, or a row already moved on, means the message was delivered to a worker,
        and the send counts as accepted. If Redis or PostgreSQL fails here, the sends are refused
        as before and the error is logged for an operator: their rows stay ``pending``."""
        redis, keys, holder = self.idempotency.redis, self.idempotency.keys, f"withdraw:{uuid.uuid4().hex}"
        claims = [keys.sending(nid) for nid in notification_ids]
        try:
            pipe = redis.pipeline(transaction=False)
            for claim in claims:
                pipe.set(claim, holder, nx=True, px=WITHDRAW_CLAIM_MS)
            taken = [nid for nid, ok in zip(notification_ids, await pipe.execute(), strict=True) if ok]
            withdrawn = await in_db(self.app, dao.withdraw_many, taken, atomic=False) if taken else set()
        except Exception as exc:
            log.error(
                "unconfirmed sends %s refused but not withdrawn: %s",
                notification_ids,
                type(exc).__name__,
                extra={"alert": True},
            )
            return set(notification_ids)
        try:
            mine = [c for c, held in zip(claims, await redis.mget(claims), strict=True) if held == holder]
            if mine:
                await redis.delete(*mine)
        except Exception as exc:  # the claims expire by themselves; a worker meanwhile finds no record
            log.warning("withdrawal claims not released: %s", type(exc).__name__)
        return withdrawn

    async def _delete(self, notification_ids: list[str]) -> None:
        try:
            await in_db(self.app, dao.delete_many, notification_ids, atomic=False)
        except peewee.PeeweeException as exc:
            log.error("rows of sends answered 503 %s not deleted: %s", notification_ids, exc)
