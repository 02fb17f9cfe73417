"""The send path's two Redis guards: idempotency and the per-user, per-channel rate limit.

Both queue their commands on a pipeline the send path shares, since a Redis round trip is the
gateway's main cost. Idempotency: the first request with a (caller, request_id) claims the key with
``SET NX`` while it is processed; the key then holds the accepted response for 24 h, with a hash of the canonical
body so a different body under the same id is a conflict. A request that fails releases the key,
so the caller may try again. Rate limit: a counter per hour window, incremented atomically; a
refused or failed send gives its slot back, so only accepted sends count.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions

from models.redis_keys import IDEMPOTENCY_TTL_S, RATE_WINDOW_S, RedisKeys

log = logging.getLogger(__name__)

#: Seconds a repeat of an in-flight request waits for the first one's outcome.
IN_FLIGHT_WAIT_S = 3.0
#: How long a claim may stay "processing" before another request may take over (a crashed gateway).
CLAIM_TTL_S = 30


def body_hash(normalized: dict) -> str:
    canonical = json.dumps(normalized, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Replay:
    """A finished earlier request with the same id: ``data`` is its response, or None on conflict."""

    data: dict | None
    in_progress: bool = False


class Idempotency:
    def __init__(self, *, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    def queue_claim(self, pipe, caller: str, request_id: str, digest: str) -> None:
        """Add the claim to ``pipe``: ``SET NX GET`` sets the key only if absent and returns what
        was there, so one command both claims and reads (one result, for :meth:`read_claim`)."""
        key = self.keys.request(caller, request_id)
        pipe.set(key, json.dumps({"state": "processing", "hash": digest}), nx=True, ex=CLAIM_TTL_S, get=True)

    @staticmethod
    def read_claim(held: str | None, digest: str) -> Replay | None:
        """``None`` when this request now owns the id, else what the earlier one left."""
        if held is None:
            return None
        value = json.loads(held)
        if value.get("hash") != digest:
            return Replay(None)
        if value.get("state") != "done":
            return Replay(None, in_progress=True)
        return Replay(value["data"])

    async def wait_for_result(self, caller: str, request_id: str, digest: str) -> Replay:
        """A same-body request still in flight (a client retrying on its own timeout): wait briefly
        for its outcome rather than call it a conflict."""
        key = self.keys.request(caller, request_id)
        for _ in range(int(IN_FLIGHT_WAIT_S / 0.05)):
            await asyncio.sleep(0.05)
            held = await self.redis.get(key)
            if held is None:
                break
            replay = self.read_claim(held, digest)
            if replay is not None and not replay.in_progress:
                return replay
        return Replay(None, in_progress=True)

    def _done(self, digest: str, data: dict) -> str:
        return json.dumps({"state": "done", "hash": digest, "data": data})

    async def complete(self, caller: str, request_id: str, digest: str, data: dict) -> None:
        await self.redis.set(self.keys.request(caller, request_id), self._done(digest, data), ex=IDEMPOTENCY_TTL_S)

    async def complete_many(self, records: list[tuple[str, str, str, dict]]) -> None:
        """:meth:`complete` for each (caller, request_id, digest, data), in one round trip. If Redis
        fails here the sends still stand: the claims expire and the rows' unique (caller,
        request_id) index answers a replay instead."""
        if not records:
            return
        pipe = self.redis.pipeline(transaction=False)
        for caller, request_id, digest, data in records:
            pipe.set(self.keys.request(caller, request_id), self._done(digest, data), ex=IDEMPOTENCY_TTL_S)
        try:
            await pipe.execute()
        except redis.exceptions.RedisError as exc:
            log.warning("idempotency records not saved (%s); the database will answer replays", exc)


class RateLimiter:
    def __init__(self, *, keys: RedisKeys, per_hour: int) -> None:
        self.keys = keys
        self.per_hour = per_hour

    def key(self, user_id: str, channel: str) -> str:
        return self.keys.rate_limit(user_id, channel)

    def queue_take(self, pipe, user_id: str, channel: str) -> None:
        """Add the taking of a slot to ``pipe`` (three results, for :meth:`read_take`).

        The slot is taken before the other checks have run, in the same round trip as the claim;
        the send path gives it back on any refusal, so only accepted sends stay counted. A request
        refused for another reason holds a slot for the millisecond its checks take, which can
        only matter to a concurrent request at the very edge of the limit.
        """
        self.queue_take_many(pipe, user_id, channel, 1)

    def queue_take_many(self, pipe, user_id: str, channel: str, count: int) -> None:
        """:meth:`queue_take` for ``count`` sends of one batch to the same user and channel, in one
        ``INCRBY`` (three results, for :meth:`split_take`)."""
        key = self.key(user_id, channel)
        pipe.incrby(key, count)
        pipe.expire(key, RATE_WINDOW_S, nx=True)
        pipe.ttl(key)

    @staticmethod
    def split_take(results, count: int) -> list[tuple[int, None, int]]:
        """The results of :meth:`queue_take_many` as ``count`` results of :meth:`queue_take`, in
        order: the slots are numbered as ``count`` INCRs in a row would have numbered them, so each
        send is judged as if it had been sent alone."""
        total, _, ttl = results
        return [(total - count + i + 1, None, ttl) for i in range(count)]

    def read_take(self, results) -> int | None:
        """``None`` if within the limit, else the seconds until the window frees a slot."""
        count, _, ttl = results
        if count <= self.per_hour:
            return None
        return max(1, int(ttl)) if ttl and ttl > 0 else RATE_WINDOW_S
