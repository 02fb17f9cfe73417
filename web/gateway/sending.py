"""The send pipeline, in the documented order of checks (README, "What a send does").

auth (handler) → validation → idempotency → user and template → preference → push token → rate
limit → record ``pending`` → publish with confirm → 202. Whatever fails after the idempotency
claim undoes what was done before it (row, status hash, rate slot, claim), so a refused request
leaves nothing half-recorded and can simply be sent again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import uuid
from dataclasses import dataclass

import peewee
from aiohttp import web
from playhouse.pool import MaxConnectionsExceeded

from logs import log_context
from models.base import iso, utcnow
from models.dao import notifications as dao
from models.notification import PENDING, SCHEDULED
from models.status_writer import queue_status, row_status, status_hash
from models.template import DEFAULT_LANGUAGE
from providers.rendering import Renderer, RenderError
from web.common import app_keys
from web.common.app import in_db
from web.common.auth import Caller
from web.common.envelope import ApiError
from web.gateway.attempts import Attempt, delivery_body, notification_row
from web.gateway.guards import Idempotency, RateLimiter, body_hash
from web.gateway.lookups import Lookups
from web.gateway.publisher import PUBLISH_TIMEOUT_S, Publisher, PublishError
from web.gateway.recorder import Entry, Recorder
from web.gateway.schemas import SendRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    data: dict
    replayed: bool


class SendPipeline:
    def __init__(
        self,
        *,
        app: web.Application,
        lookups: Lookups,
        idempotency: Idempotency,
        limiter: RateLimiter,
        publisher: Publisher,
        recorder: Recorder,
        renderer: Renderer,
    ) -> None:
        self.app = app
        self.lookups = lookups
        self.idempotency = idempotency
        self.limiter = limiter
        self.publisher = publisher
        self.recorder = recorder
        self.renderer = renderer
        # Notification ids come from a generator seeded once from the OS: uuid4() asks the kernel for
        # 16 random bytes per call, a measurable cost on the send path of a virtualised machine. The
        # ids need to be unique, not secret (every read is checked against the caller).
        self._ids = random.Random(secrets.randbits(128))

    async def send(self, caller: Caller, req: SendRequest, *, correlation_id: str) -> Accepted:
        """One Redis round trip on the loop, since each is a cross-process wake-up that dominates
        the cost of a send on a small machine: claim, cached user and template, ``pending`` hash and
        rate slot together, all given back on any refusal; the idempotency record is written by the
        recorder once the publish is confirmed."""
        attempt = self._attempt(caller, req, correlation_id)
        pipe = self.app[app_keys.redis_key].pipeline(transaction=False)
        self._queue(pipe, attempt)
        return await self._proceed(attempt, await pipe.execute())

    async def send_many(
        self, caller: Caller, items: list[SendRequest | ApiError], *, correlation_id: str
    ) -> list[Accepted | BaseException]:
        """Each item judged exactly as :meth:`send` judges it, in order; an item that is already an
        :class:`ApiError` (it did not decode) stays one. The Redis reads and claims of every item
        share one round trip (:meth:`_read_many`), and their recordings reach the recorder
        together, so a batch costs one pipeline and a few multi-row INSERTs rather than one of each
        per item."""
        attempts: list[Attempt | ApiError] = []
        for item in items:
            try:
                attempts.append(item if isinstance(item, ApiError) else self._attempt(caller, item, correlation_id))
            except ApiError as exc:
                attempts.append(exc)
        live = [attempt for attempt in attempts if isinstance(attempt, Attempt)]
        results = iter(await self._read_many(live) if live else [])
        return await asyncio.gather(
            *(
                self._proceed(attempt, next(results)) if isinstance(attempt, Attempt) else _raise(attempt)
                for attempt in attempts
            ),
            return_exceptions=True,
        )

    async def _read_many(self, attempts: list[Attempt]) -> list[list]:
        """What :meth:`_queue` reads and takes, for a whole batch in one round trip, each send's
        results in :meth:`_queue`'s order and shape so that :meth:`_proceed` judges it as a single
        send. Per send: its claim and status hash. Shared: one cache read per distinct user and
        template, and one ``INCRBY`` per user and channel for all their sends' rate slots, numbered
        in request order (:meth:`RateLimiter.split_take`)."""
        pipe = self.app[app_keys.redis_key].pipeline(transaction=False)
        for attempt in attempts:
            self.idempotency.queue_claim(pipe, attempt.caller.sub, attempt.request.request_id, attempt.digest)
            self._queue_status(pipe, attempt)
        users = list(dict.fromkeys(attempt.user_id for attempt in attempts))
        codes = list(dict.fromkeys(attempt.request.template_code for attempt in attempts))
        for user_id in users:
            self.lookups.queue_user(pipe, user_id)
        for code in codes:
            self.lookups.queue_template(pipe, code)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, attempt in enumerate(attempts):
            groups.setdefault((attempt.user_id, attempt.request.notification_type), []).append(i)
        for (user_id, channel), members in groups.items():
            self.limiter.queue_take_many(pipe, user_id, channel, len(members))
        results = await pipe.execute()
        at = 3 * len(attempts)
        cached_users = dict(zip(users, results[at : at + len(users)], strict=True))
        at += len(users)
        cached_templates = dict(zip(codes, results[at : at + len(codes)], strict=True))
        at += len(codes)
        takes: list = [None] * len(attempts)
        for members in groups.values():
            for i, take in zip(members, self.limiter.split_take(results[at : at + 3], len(members)), strict=True):
                takes[i] = take
            at += 3
        return [
            [
                results[3 * i],
                cached_users[attempt.user_id],
                cached_templates[attempt.request.template_code],
                *results[3 * i + 1 : 3 * i + 3],
                *takes[i],
            ]
            for i, attempt in enumerate(attempts)
        ]

    def _attempt(self, caller: Caller, req: SendRequest, correlation_id: str) -> Attempt:
        canonical = req.canonical()
        user_id = canonical["user_id"]
        if not caller.may_act_on(user_id):
            raise ApiError("FORBIDDEN", "a user token may only send to its own user")
        return Attempt(
            caller=caller,
            request=req,
            user_id=user_id,
            digest=body_hash(canonical),
            correlation_id=correlation_id,
            notification_id=str(uuid.UUID(int=self._ids.getrandbits(128), version=4)),
            created_at=utcnow(),
            status=SCHEDULED if req.scheduled else PENDING,
        )

    def _queue(self, pipe, attempt: Attempt) -> None:
        """Queue an attempt's claim, cached lookups, status hash and rate slot; :meth:`_proceed`
        reads their results in this order."""
        req = attempt.request
        self.idempotency.queue_claim(pipe, attempt.caller.sub, req.request_id, attempt.digest)
        self.lookups.queue_cached(pipe, attempt.user_id, req.template_code)
        self._queue_status(pipe, attempt)
        self.limiter.queue_take(pipe, attempt.user_id, req.notification_type)

    def _queue_status(self, pipe, attempt: Attempt) -> None:
        """The status hash of the send (two results)."""
        created = iso(attempt.created_at)
        queue_status(
            pipe,
            self._status_key(attempt),
            status_hash(
                notification_id=attempt.notification_id, status=attempt.status, created_at=created, updated_at=created
            ),
        )

    def _status_key(self, attempt: Attempt) -> str:
        return self.app[app_keys.redis_keys_key].notification(attempt.notification_id)

    async def _proceed(self, attempt: Attempt, results: list) -> Accepted:
        caller, req = attempt.caller, attempt.request
        held, user_raw, template_raw = results[:3]
        status_key = self._status_key(attempt)
        rate_key = self.limiter.key(attempt.user_id, req.notification_type)
        replay = self.idempotency.read_claim(held, attempt.digest)
        if replay is not None:
            await self._forget(status_key, rate_key)
            if replay.in_progress:
                replay = await self.idempotency.wait_for_result(caller.sub, req.request_id, attempt.digest)
            return self._replayed(replay)
        try:
            data, replayed = await self._accept(attempt, user_raw, template_raw, self.limiter.read_take(results[-3:]))
        except BaseException:
            claim = (caller.sub, req.request_id)
            await asyncio.shield(self._forget(status_key, rate_key, release=claim))
            raise
        if replayed:
            await self._forget(status_key, rate_key)
            await self.idempotency.complete(caller.sub, req.request_id, attempt.digest, data)
        return Accepted(data, replayed=replayed)

    def _replayed(self, replay) -> Accepted:
        self.app[app_keys.metrics_key].idempotency_hit(replay)
        if replay.data is not None:
            return Accepted(replay.data, replayed=True)
        if replay.in_progress:
            raise ApiError(
                "SERVICE_UNAVAILABLE",
                "a request with this request_id is still being processed; retry shortly for its result",
                headers={"Retry-After": "1"},
            )
        raise ApiError("IDEMPOTENCY_CONFLICT", "request_id was already used with a different body")

    async def _accept(
        self, attempt: Attempt, user_raw: str | None, template_raw: str | None, rate_wait: int | None
    ) -> tuple[dict, bool]:
        """The checks in the documented order (README, "What a send does"), then record and publish;
        (data, replayed from the row). ``user_raw`` and ``template_raw`` are the cached copies read
        with the claim; ``rate_wait`` is the rate limiter's verdict, already taken, judged here in
        its place."""
        req = attempt.request
        channel = req.notification_type
        user = await self.lookups.user(attempt.user_id, user_raw, correlation_id=attempt.correlation_id)
        if user is None or not user.get("is_active", False):
            raise ApiError("NOT_FOUND", "user not found")
        preferences = user.get("preferences") or {}
        language = preferences.get("language") or DEFAULT_LANGUAGE
        template = await self.lookups.template(
            req.template_code, language, template_raw, correlation_id=attempt.correlation_id
        )
        if template is None or not template.get("is_active", True):
            raise ApiError("NOT_FOUND", "template not found")
        if preferences.get(channel, True) is False:
            raise ApiError("PREFERENCE_DISABLED", f"the user has turned {channel} notifications off")
        if channel == "push" and not user.get("push_token"):
            raise ApiError("VALIDATION_ERROR", "the user has no push token")
        self._check_renders(template, req.variables)
        if rate_wait is not None:
            self.app[app_keys.metrics_key].rate_limited.labels(channel).inc()
            raise ApiError(
                "RATE_LIMITED",
                f"more than {self.limiter.per_hour} {channel} notifications to this user in an hour",
                headers={"Retry-After": str(rate_wait)},
            )
        return await self._record_and_publish(attempt, user, template)

    async def _forget(self, status_key: str, rate_key: str, release: tuple[str, str] | None = None) -> None:
        """Undo what was taken for a send that was not accepted after all: the ``pending`` hash, the
        rate slot and, when given, the idempotency claim."""
        pipe = self.app[app_keys.redis_key].pipeline(transaction=False)
        pipe.delete(status_key)
        pipe.decr(rate_key)
        if release is not None:
            pipe.delete(self.app[app_keys.redis_keys_key].request(*release))
        await pipe.execute()

    def _check_renders(self, template: dict, variables: dict) -> None:
        """Refuse now, with the variable's name, what the worker could never render.

        Rendered on the loop: templates are compiled once and the sandbox bounds loops, products and
        output, so this costs microseconds; a thread hop would cost more under load.
        """
        try:
            self.renderer.render(
                subject=template.get("subject") or "", content=template["content"], variables=variables
            )
        except RenderError as exc:
            raise ApiError("VALIDATION_ERROR", str(exc)) from None

    async def _record_and_publish(self, attempt: Attempt, user: dict, template: dict) -> tuple[dict, bool]:
        req, nid, now = attempt.request, attempt.notification_id, attempt.created_at
        created = iso(now)
        body = delivery_body(attempt, user, template)
        row = notification_row(attempt, template)
        message = None
        if attempt.status == SCHEDULED:  # the row keeps the message until the due-time loop publishes it
            row["payload"] = {"body": body, "correlation_id": attempt.correlation_id}
        else:
            message = self.publisher.message(body=body, correlation_id=attempt.correlation_id)
        data = {"notification_id": nid, "request_id": req.request_id, "status": attempt.status, "created_at": created}
        entry = Entry(row=row, record=(attempt.caller.sub, req.request_id, attempt.digest, data), message=message)
        with log_context(notification_id=nid):
            try:
                stored = await self.recorder.record(entry, timeout_s=PUBLISH_TIMEOUT_S)
            except (PublishError, TimeoutError) as exc:
                log.error("publish not confirmed: %s", exc)
                raise ApiError(
                    "SERVICE_UNAVAILABLE",
                    "the message broker did not accept the notification; try again shortly",
                    headers={"Retry-After": "5"},
                ) from None
            except (peewee.PeeweeException, MaxConnectionsExceeded) as exc:
                log.error("could not record the notification: %s", exc)
                raise ApiError(
                    "SERVICE_UNAVAILABLE", "storage unavailable; try again shortly", headers={"Retry-After": "5"}
                ) from None
            if not stored:
                return await self._replay_from_database(attempt), True
            log.info("notification accepted", extra={"notification_type": req.notification_type})
            self.app[app_keys.metrics_key].accepted.labels(req.notification_type).inc()
        return data, False

    async def mirror_status(self, row) -> None:
        """Copy a row's status to its Redis hash (after a receipt or a replay changed it)."""
        pipe = self.app[app_keys.redis_key].pipeline(transaction=True)
        queue_status(pipe, self.app[app_keys.redis_keys_key].notification(row.notification_id), row_status(row))
        await pipe.execute()

    async def _replay_from_database(self, attempt: Attempt) -> dict:
        """The idempotency key was lost (a Redis restart) but the row remembers the request."""
        row = await in_db(self.app, dao.get_by_request, attempt.caller.sub, attempt.request.request_id)
        conflict = row is None or row.request_hash != attempt.digest
        self.app[app_keys.metrics_key].idempotency.labels("conflict" if conflict else "replayed").inc()
        if conflict:
            raise ApiError("IDEMPOTENCY_CONFLICT", "request_id was already used with a different body")
        return {
            "notification_id": row.notification_id,
            "request_id": row.request_id,
            "status": SCHEDULED if row.payload is not None else PENDING,  # what the first answer said
            "created_at": iso(row.created_at),
        }


async def _raise(error: ApiError) -> Accepted:
    raise error
