"""The send pipeline, in the contract's order of checks.

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
from models.keys import STATUS_TTL_S
from models.notification import CHANNELS, PENDING
from providers.rendering import Renderer, RenderError
from web.common import keys, validation
from web.common.app import in_db
from web.common.auth import Caller
from web.common.envelope import ApiError
from web.gateway.guards import Idempotency, RateLimiter, body_hash
from web.gateway.lookups import DEFAULT_LANGUAGE, Lookups
from web.gateway.publisher import PUBLISH_TIMEOUT_S, Publisher, PublishError
from web.gateway.recorder import Entry, Recorder

log = logging.getLogger(__name__)

FIELDS = {"notification_type", "user_id", "template_code", "variables", "request_id", "priority", "metadata"}
DEFAULT_PRIORITY = 5


@dataclass(frozen=True)
class Accepted:
    data: dict
    replayed: bool


def parse(body: dict) -> dict:
    """The send request, validated and with defaults applied (the form whose hash is compared)."""
    validation.reject_unknown(body, FIELDS)
    channel = validation.string(body, "notification_type", max_len=8)
    if channel not in CHANNELS:
        raise validation.fail("notification_type must be 'email' or 'push'")
    variables = validation.obj(body, "variables", default={})
    if "link" in variables and variables["link"] is not None:
        link = variables["link"]
        if not isinstance(link, str) or not link.startswith(("http://", "https://")) or len(link) > 2048:
            raise validation.fail("variables.link must be an http(s) URL")
    return {
        "notification_type": channel,
        "user_id": validation.uuid_str(body.get("user_id"), "user_id"),
        "template_code": validation.string(body, "template_code", max_len=100, single_line=True),
        "variables": variables,
        "request_id": validation.string(body, "request_id", max_len=128, single_line=True),
        "priority": validation.integer(body, "priority", low=1, high=10, default=DEFAULT_PRIORITY),
        "metadata": validation.obj(body, "metadata", default={}),
    }


class SendPipeline:
    def __init__(self, *, app: web.Application, lookups: Lookups, idempotency: Idempotency,
                 limiter: RateLimiter, publisher: Publisher, recorder: Recorder, renderer: Renderer) -> None:
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

    async def send(self, caller: Caller, body: dict, *, correlation_id: str) -> Accepted:
        """One Redis round trip on the loop, since each is a cross-process wake-up that dominates
        the cost of a send on a small machine: claim, cached user and template, ``pending`` hash and
        rate slot together, all given back on any refusal; the idempotency record is written by the
        thread that published."""
        req = parse(body)
        user_id = req["user_id"]
        if not caller.may_act_on(user_id):
            raise ApiError("FORBIDDEN", "a user token may only send to its own user")
        digest = body_hash(req)
        nid, now = str(uuid.UUID(int=self._ids.getrandbits(128), version=4)), utcnow()
        status_key = self.app[keys.redis_keys_key].notification(nid)
        pipe = self.app[keys.redis_key].pipeline(transaction=False)
        self.idempotency.queue_claim(pipe, caller.sub, req["request_id"], digest)
        self.lookups.queue_cached(pipe, user_id, req["template_code"])
        self._queue_status(pipe, status_key, dao.status_hash(notification_id=nid, status=PENDING,
                                                              created_at=iso(now), updated_at=iso(now)))
        self.limiter.queue_take(pipe, user_id, req["notification_type"])
        results = await pipe.execute()
        held, user_raw, template_raw = results[:3]
        rate_key = self.limiter.key(user_id, req["notification_type"])
        replay = self.idempotency.read_claim(held, digest)
        if replay is not None:
            await self._forget(status_key, rate_key)
            if replay.in_progress:
                replay = await self.idempotency.wait_for_result(caller.sub, req["request_id"], digest)
            return self._replayed(replay)
        try:
            data, replayed = await self._accept(caller, req, digest, correlation_id, user_raw, template_raw,
                                                nid, now, self.limiter.read_take(results[-3:]))
        except BaseException:
            claim = (caller.sub, req["request_id"])
            await asyncio.shield(self._forget(status_key, rate_key, release=claim))
            raise
        if replayed:
            await self._forget(status_key, rate_key)
            await self.idempotency.complete(caller.sub, req["request_id"], digest, data)
        return Accepted(data, replayed=replayed)

    def _replayed(self, replay) -> Accepted:
        self.app[keys.metrics_key].idempotency_hit(replay)
        if replay.data is not None:
            return Accepted(replay.data, replayed=True)
        if replay.in_progress:
            raise ApiError("SERVICE_UNAVAILABLE", "a request with this request_id is still being processed; "
                           "retry shortly for its result", headers={"Retry-After": "1"})
        raise ApiError("IDEMPOTENCY_CONFLICT", "request_id was already used with a different body")

    async def _accept(self, caller: Caller, req: dict, digest: str, correlation_id: str, user_raw: str | None,
                      template_raw: str | None, nid: str, now, rate_wait: int | None) -> tuple[dict, bool]:
        """The checks in the contract's order, then record and publish; (data, replayed from the row).
        ``rate_wait`` is the rate limiter's verdict, already taken, judged here in its place."""
        channel, user_id = req["notification_type"], req["user_id"]
        user = await self.lookups.user(user_id, user_raw, correlation_id=correlation_id)
        if user is None or not user.get("is_active", False):
            raise ApiError("NOT_FOUND", "user not found")
        preferences = user.get("preferences") or {}
        language = preferences.get("language") or DEFAULT_LANGUAGE
        template = await self.lookups.template(req["template_code"], language, template_raw,
                                               correlation_id=correlation_id)
        if template is None or not template.get("is_active", True):
            raise ApiError("NOT_FOUND", "template not found")
        if preferences.get(channel, True) is False:
            raise ApiError("PREFERENCE_DISABLED", f"the user has turned {channel} notifications off")
        if channel == "push" and not user.get("push_token"):
            raise ApiError("VALIDATION_ERROR", "the user has no push token")
        self._check_renders(template, req["variables"])
        if rate_wait is not None:
            self.app[keys.metrics_key].rate_limited.labels(channel).inc()
            raise ApiError("RATE_LIMITED", f"more than {self.limiter.per_hour} {channel} notifications "
                           "to this user in an hour", headers={"Retry-After": str(rate_wait)})
        return await self._record_and_publish(caller, req, digest, user, template, correlation_id, nid, now)

    async def _forget(self, status_key: str, rate_key: str, release: tuple[str, str] | None = None) -> None:
        """Undo what was taken for a send that was not accepted after all: the ``pending`` hash, the
        rate slot and, when given, the idempotency claim."""
        pipe = self.app[keys.redis_key].pipeline(transaction=False)
        pipe.delete(status_key)
        pipe.decr(rate_key)
        if release is not None:
            pipe.delete(self.app[keys.redis_keys_key].request(*release))
        await pipe.execute()

    def _check_renders(self, template: dict, variables: dict) -> None:
        """Refuse now, with the variable's name, what the worker could never render.

        Rendered on the loop: templates are compiled once and the sandbox bounds loops, products and
        output, so this costs microseconds; a thread hop would cost more under load.
        """
        try:
            self.renderer.render(subject=template.get("subject") or "", content=template["content"],
                                 variables=variables)
        except RenderError as exc:
            raise ApiError("VALIDATION_ERROR", str(exc)) from None

    async def _record_and_publish(self, caller: Caller, req: dict, digest: str, user: dict, template: dict,
                                  correlation_id: str, nid: str, now) -> tuple[dict, bool]:
        created = iso(now)
        message = {
            "notification_id": nid,
            "notification_type": req["notification_type"],
            "user_id": req["user_id"],
            "user_email": user["email"],
            "user_push_token": user.get("push_token"),
            "template_code": req["template_code"],
            "variables": req["variables"],
            "request_id": req["request_id"],
            "priority": req["priority"],
            "metadata": req["metadata"],
            "retry_count": 0,
            "created_at": created,
            "template": {key: template.get(key) for key in ("language", "version", "subject", "content")},
        }
        row = dict(notification_id=nid, request_id=req["request_id"], caller=caller.sub, request_hash=digest,
                   user_id=req["user_id"], template_code=req["template_code"],
                   notification_type=req["notification_type"], status=PENDING, priority=req["priority"],
                   metadata=req["metadata"], created_at=now, updated_at=now)
        data = {"notification_id": nid, "request_id": req["request_id"], "status": PENDING, "created_at": created}
        entry = Entry(row=row, record=(caller.sub, req["request_id"], digest, data),
                      message=self.publisher.message(channel=req["notification_type"], body=message,
                                                     priority=req["priority"], correlation_id=correlation_id))
        with log_context(notification_id=nid):
            try:
                stored = await asyncio.wait_for(self.recorder.record(entry), PUBLISH_TIMEOUT_S)
            except (PublishError, TimeoutError) as exc:
                log.error("publish not confirmed: %s", exc)
                raise ApiError("SERVICE_UNAVAILABLE", "the message broker did not accept the notification; "
                               "try again shortly", headers={"Retry-After": "5"}) from None
            except (peewee.PeeweeException, MaxConnectionsExceeded) as exc:
                log.error("could not record the notification: %s", exc)
                raise ApiError("SERVICE_UNAVAILABLE", "storage unavailable; try again shortly",
                               headers={"Retry-After": "5"}) from None
            if not stored:
                return await self._replay_from_database(caller, req, digest), True
            log.info("notification accepted", extra={"notification_type": req["notification_type"]})
            self.app[keys.metrics_key].accepted.labels(req["notification_type"]).inc()
        return data, False

    async def mirror_status(self, row) -> None:
        """Copy a row's status to its Redis hash (after a receipt or a replay changed it)."""
        await self._write_status(
            self.app[keys.redis_keys_key].notification(row.notification_id),
            dao.status_hash(notification_id=row.notification_id, status=row.status,
                            created_at=iso(row.created_at), updated_at=iso(row.updated_at), error=row.error,
                            retry_count=row.retry_count))

    async def _write_status(self, key: str, mapping: dict) -> None:
        pipe = self.app[keys.redis_key].pipeline(transaction=True)
        self._queue_status(pipe, key, mapping)
        await pipe.execute()

    @staticmethod
    def _queue_status(pipe, key: str, mapping: dict) -> None:
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, STATUS_TTL_S)

    async def _replay_from_database(self, caller: Caller, req: dict, digest: str) -> dict:
        """The idempotency key was lost (a Redis restart) but the row remembers the request."""
        row = await in_db(self.app, dao.get_by_request, caller.sub, req["request_id"])
        self.app[keys.metrics_key].idempotency.labels("conflict" if row is None or row.request_hash != digest
                                                      else "replayed").inc()
        if row is None or row.request_hash != digest:
            raise ApiError("IDEMPOTENCY_CONFLICT", "request_id was already used with a different body")
        return {"notification_id": row.notification_id, "request_id": row.request_id, "status": PENDING,
                "created_at": iso(row.created_at)}
