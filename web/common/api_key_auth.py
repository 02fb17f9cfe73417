"""API keys as bearer credentials: a key to its caller, revocation seen within seconds, last use
kept to the minute (README, "API keys").

Each process keeps what it learnt of a key (found by the hash of the key, never the key) for
:data:`KEY_CACHE_S` seconds, then asks the database again. A revocation is therefore seen by
every gateway process within that time, under the contract's 5 s, without any message between
processes. The cost is one indexed lookup per key per process every few seconds. Expiry is
checked against the clock on every request, so an expired key is refused at once.

``last_used_at`` is written in the background, at most once a minute per key and process. The
UPDATE also skips a row written less than a minute before, so all the processes together write a
key's row about once a minute, not once per request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from models import api_key
from models.base import utcnow
from models.dao import api_keys as dao
from web.common.app import in_db
from web.common.auth import Caller
from web.common.envelope import ApiError

log = logging.getLogger(__name__)

#: Seconds a process trusts what it read of a key: the bound on how late a revocation is seen.
KEY_CACHE_S = 4.0
#: Keys remembered per process (the least recently used are forgotten first).
CACHE_SIZE = 4096
#: Seconds between two ``last_used_at`` writes for one key by one process.
TOUCH_EVERY_S = 60.0

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="herald"'}


@dataclass(frozen=True)
class _Seen:
    """What the database said of a key hash, and when (monotonic seconds); ``key_id`` ``None``: unknown."""

    at: float
    key_id: str | None = None
    mode: str = ""
    expires_at: dt.datetime | None = None
    revoked: bool = False


class ApiKeyAuthenticator:
    """Parameters:
    run_db: runs a blocking query function off the loop (``in_db`` bound to the app).
    cache_s: see :data:`KEY_CACHE_S`; tests shorten or lengthen it.
    clock: monotonic seconds; ``now``: the wall clock as naive UTC (expiry, ``last_used_at``).
    """

    def __init__(
        self,
        *,
        run_db: Callable[..., Awaitable],
        cache_s: float = KEY_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.run_db = run_db
        self.cache_s = cache_s
        self.clock = clock
        self.now = now
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    async def authenticate(self, key: str) -> Caller:
        """The caller a key stands for (``apikey:<id>``, role ``service``, the key's mode), or 401
        ``UNAUTHORIZED`` for a key that is unknown, revoked or expired. The message never quotes
        the key."""
        if not api_key.looks_like_key(key):
            raise ApiError("UNAUTHORIZED", "invalid API key", headers=_CHALLENGE)
        seen = await self._lookup(api_key.digest(key))
        if seen.key_id is None:
            raise ApiError("UNAUTHORIZED", "invalid API key", headers=_CHALLENGE)
        if seen.revoked:
            raise ApiError("UNAUTHORIZED", "this API key has been revoked", headers=_CHALLENGE)
        now = self.now()
        if seen.expires_at is not None and seen.expires_at <= now:
            raise ApiError("UNAUTHORIZED", "this API key has expired", headers=_CHALLENGE)
        self._touch(seen.key_id, now)
        return Caller(sub=api_key.subject(seen.key_id), role="service", mode=seen.mode)

    async def _lookup(self, key_hash: str) -> _Seen:
        seen = self._seen.get(key_hash)
        if seen is not None and self.clock() - seen.at < self.cache_s:
            self._seen.move_to_end(key_hash)
            return seen
        row = await self.run_db(dao.by_hash, key_hash)
        if row is None:
            seen = _Seen(at=self.clock())
        else:
            seen = _Seen(
                at=self.clock(),
                key_id=str(row.id),
                mode=row.mode,
                expires_at=row.expires_at,
                revoked=row.revoked_at is not None,
            )
        self._seen[key_hash] = seen
        self._seen.move_to_end(key_hash)
        while len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)
        return seen

    def _touch(self, key_id: str, now: dt.datetime) -> None:
        last = self._touched.get(key_id)
        if last is not None and self.clock() - last < TOUCH_EVERY_S:
            return
        if len(self._touched) >= CACHE_SIZE:
            self._touched.clear()
        self._touched[key_id] = self.clock()
        task = asyncio.get_running_loop().create_task(self._write_last_used(key_id, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_last_used(self, key_id: str, at: dt.datetime) -> None:
        try:
            await self.run_db(dao.touch, key_id, at)
        except Exception as exc:
            # Only bookkeeping: the request was served; the next minute's use writes it.
            self._touched.pop(key_id, None)
            log.warning("last_used_at of an API key not written (%s)", type(exc).__name__)

    async def flush(self) -> None:
        """Wait for the ``last_used_at`` writes under way (at shutdown, and in tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def for_app(app: web.Application) -> ApiKeyAuthenticator:
    """The authenticator of a service whose app has a database (its queries run in ``in_db``)."""
    return ApiKeyAuthenticator(run_db=functools.partial(in_db, app))
