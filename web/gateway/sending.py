"""The send pipeline, in the contract's order of checks.

auth (handler) → validation → idempotency → user and template → preference → push token → rate
limit → record ``pending`` → publish with confirm → 202. Whatever fails after the idempotency
claim undoes what was done before it (row, status hash, rate slot, claim), so a refused request
leaves nothing half-recorded and can simply be sent again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import peewee
from aiohttp import web

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
from web.gateway.publisher import Publisher, PublishError

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
                 limiter: RateLimiter, publisher: Publisher, renderer: Renderer) -> None:
        self.app = app
        self.lookups = lookups
        self.idempotency = idempotency
        self.limiter = limiter
        self.publisher = publisher
        self.renderer = renderer

    async def send(self, caller: Caller, body: dict, *, correlation_id: str) -> Accepted:
        req = parse(body)
        if not caller.may_act_on(req["user_id"]):
            raise ApiError("FORBIDDEN", "a user token may only send to its own user")
        digest = body_hash(req)
        replay = await self.idempotency.claim(caller.sub, req["request_id"], digest)
        if replay is not None:
            return self._replayed(replay)
        try:
            return await self._accept(caller, req, digest, correlation_id)
        except BaseException:
            await asyncio.shield(self.idempotency.release(caller.sub, req["request_id"]))
            raise

    def _replayed(self, replay) -> Accepted:
        if replay.data is not None:
            return Accepted(replay.data, replayed=True)
        if replay.in_progress:
            raise ApiError("IDEMPOTENCY_CONFLICT", "a request with this request_id is still being processed")
        raise ApiError("IDEMPOTENCY_CONFLICT", "request_id was already used with a different body")

    async def _accept(self, caller: Caller, req: dict, digest: str, correlation_id: str) -> Accepted:
        channel, user_id = req["notification_type"], req["user_id"]
        user = await self.lookups.user(user_id, correlation_id=correlation_id)
        if user is None or not user.get("is_active", False):
            raise ApiError("NOT_FOUND", "user not found")
        language = (user.get("preferences") or {}).get("language") or DEFAULT_LANGUAGE
        template = await self.lookups.template(req["template_code"], language, correlation_id=correlation_id)
        if template is None or not template.get("is_active", True):
            raise ApiError("NOT_FOUND", "template not found")
        if (user.get("preferences") or {}).get(channel, True) is False:
            raise ApiError("PREFERENCE_DISABLED", f"the user has turned {channel} notifications off")
        if channel == "push" and not user.get("push_token"):
            raise ApiError("VALIDATION_ERROR", "the user has no push token")
        await self._check_renders(template, req["variables"])
        wait = await self.limiter.take(user_id, channel)
        if wait is not None:
            raise ApiError("RATE_LIMITED", f"more than {self.limiter.per_hour} {channel} notifications "
                           "to this user in an hour", headers={"Retry-After": str(wait)})
        try:
            data, replayed = await self._record_and_publish(caller, req, digest, user, template, correlation_id)
        except BaseException:
            await asyncio.shield(self.limiter.give_back(user_id, channel))
            raise
        if replayed:
            await self.limiter.give_back(user_id, channel)
        await self.idempotency.complete(caller.sub, req["request_id"], digest, data)
        return Accepted(data, replayed=replayed)

    async def _check_renders(self, template: dict, variables: dict) -> None:
        """Refuse now, with the variable's name, what the worker could never render."""
        def render() -> None:
            self.renderer.render(subject=template.get("subject") or "", content=template["content"],
                                 variables=variables)
        try:
            await asyncio.get_running_loop().run_in_executor(None, render)
        except RenderError as exc:
            raise ApiError("VALIDATION_ERROR", str(exc)) from None

    async def _record_and_publish(self, caller: Caller, req: dict, digest: str, user: dict, template: dict,
                                  correlation_id: str) -> tuple[dict, bool]:
        nid = str(uuid.uuid4())
        now = utcnow()
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
        with log_context(notification_id=nid):
            try:
                await in_db(self.app, dao.create, notification_id=nid, request_id=req["request_id"],
                            caller=caller.sub, request_hash=digest, user_id=req["user_id"],
                            template_code=req["template_code"], notification_type=req["notification_type"],
                            status=PENDING, priority=req["priority"], metadata=req["metadata"],
                            created_at=now, updated_at=now)
            except peewee.IntegrityError:
                return await self._replay_from_database(caller, req, digest), True
            except peewee.PeeweeException:
                log.exception("could not record the notification")
                raise ApiError("SERVICE_UNAVAILABLE", "storage unavailable; try again shortly",
                               headers={"Retry-After": "5"}) from None
            status_key = self.app[keys.redis_keys_key].notification(nid)
            try:
                await self._set_pending(status_key, nid, created)
                await self.publisher.publish(channel=req["notification_type"], body=message,
                                             priority=req["priority"], correlation_id=correlation_id)
            except BaseException as exc:
                await asyncio.shield(self._undo(nid, status_key))
                if isinstance(exc, PublishError):
                    log.error("publish not confirmed: %s", exc)
                    raise ApiError("SERVICE_UNAVAILABLE", "the message broker did not accept the "
                                   "notification; try again shortly", headers={"Retry-After": "5"}) from None
                raise
            log.info("notification accepted", extra={"notification_type": req["notification_type"]})
        return {"notification_id": nid, "request_id": req["request_id"], "status": PENDING,
                "created_at": created}, False

    async def _set_pending(self, key: str, nid: str, created: str) -> None:
        await self._write_status(key, dao.status_hash(notification_id=nid, status=PENDING, created_at=created,
                                                      updated_at=created))

    async def mirror_status(self, row) -> None:
        """Copy a row's status to its Redis hash (after a receipt or a replay changed it)."""
        await self._write_status(
            self.app[keys.redis_keys_key].notification(row.notification_id),
            dao.status_hash(notification_id=row.notification_id, status=row.status,
                            created_at=iso(row.created_at), updated_at=iso(row.updated_at), error=row.error,
                            retry_count=row.retry_count))

    async def _write_status(self, key: str, mapping: dict) -> None:
        pipe = self.app[keys.redis_key].pipeline(transaction=True)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, STATUS_TTL_S)
        await pipe.execute()

    async def _undo(self, nid: str, status_key: str) -> None:
        try:
            await in_db(self.app, dao.delete, nid)
            await self.app[keys.redis_key].delete(status_key)
        except Exception:
            log.exception("could not undo a refused notification")

    async def _replay_from_database(self, caller: Caller, req: dict, digest: str) -> dict:
        """The idempotency key was lost (a Redis restart) but the row remembers the request."""
        row = await in_db(self.app, dao.get_by_request, caller.sub, req["request_id"])
        if row is None or row.request_hash != digest:
            raise ApiError("IDEMPOTENCY_CONFLICT", "request_id was already used with a different body")
        return {"notification_id": row.notification_id, "request_id": row.request_id, "status": PENDING,
                "created_at": iso(row.created_at)}
