"""The send path's two Redis guards: idempotency and the per-user, per-channel rate limit.

Idempotency: the first request with a (caller, request_id) claims the key with ``SET NX`` while it
is processed; the key then holds the accepted response for 24 h, with a hash of the canonical
body so a different body under the same id is a conflict. A request that fails releases the key,
so the caller may try again. Rate limit: a counter per hour window, incremented atomically; a
refused or failed send gives its slot back, so only accepted sends count.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis.asyncio as aioredis

from models.keys import IDEMPOTENCY_TTL_S, RATE_WINDOW_S, Keys

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
    def __init__(self, *, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def claim(self, caller: str, request_id: str, digest: str) -> Replay | None:
        """``None`` when this request now owns the id, else what the earlier one left."""
        key = self.keys.request(caller, request_id)
        claim = json.dumps({"state": "processing", "hash": digest})
        if await self.redis.set(key, claim, nx=True, ex=CLAIM_TTL_S):
            return None
        raw = await self.redis.get(key)
        if raw is None:  # expired between the two calls: try once more
            return None if await self.redis.set(key, claim, nx=True, ex=CLAIM_TTL_S) else Replay(None, True)
        held = json.loads(raw)
        if held.get("hash") != digest:
            return Replay(None)
        if held.get("state") != "done":
            return Replay(None, in_progress=True)
        return Replay(held["data"])

    async def complete(self, caller: str, request_id: str, digest: str, data: dict) -> None:
        value = json.dumps({"state": "done", "hash": digest, "data": data})
        await self.redis.set(self.keys.request(caller, request_id), value, ex=IDEMPOTENCY_TTL_S)

    async def release(self, caller: str, request_id: str) -> None:
        await self.redis.delete(self.keys.request(caller, request_id))


class RateLimiter:
    def __init__(self, *, redis: aioredis.Redis, keys: Keys, per_hour: int) -> None:
        self.redis = redis
        self.keys = keys
        self.per_hour = per_hour

    async def take(self, user_id: str, channel: str) -> int | None:
        """Take a slot; ``None`` if taken, else the seconds until the window frees one."""
        key = self.keys.rate_limit(user_id, channel)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, RATE_WINDOW_S, nx=True)
        pipe.ttl(key)
        count, _, ttl = await pipe.execute()
        if count <= self.per_hour:
            return None
        await self.redis.decr(key)
        return max(1, int(ttl)) if ttl and ttl > 0 else RATE_WINDOW_S

    async def give_back(self, user_id: str, channel: str) -> None:
        await self.redis.decr(self.keys.rate_limit(user_id, channel))
