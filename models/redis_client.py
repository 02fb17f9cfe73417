"""Redis clients from settings: the real server, or an in-process one for ``make run``.

Clients are built per process (web apps keep theirs under an AppKey, workers per broker), never
at import. Timeouts are short so a Redis outage turns into a 503 in seconds, not a hung request.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

#: Seconds; a request that cannot reach Redis fails fast rather than holding a connection.
SOCKET_TIMEOUT_S = 2.0
#: Connections one web process opens at most. Beyond them a command waits (up to the socket
#: timeout) for one to come free rather than failing: a burst of requests, or a batch of a
#: thousand sends, queues briefly instead of answering 503.
MAX_CONNECTIONS = 200

_embedded_server = None


def embedded_server():
    """The one in-process Redis of an embedded (``make run``) process, shared by its clients."""
    global _embedded_server
    if _embedded_server is None:
        import fakeredis

        _embedded_server = fakeredis.FakeServer()
    return _embedded_server


def async_client(url: str | None) -> aioredis.Redis:
    if url is None:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=embedded_server(), decode_responses=True)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
        max_connections=MAX_CONNECTIONS,
        timeout=SOCKET_TIMEOUT_S,
    )
    return aioredis.Redis.from_pool(pool)


def sync_client(url: str | None) -> redis.Redis:
    if url is None:
        import fakeredis

        return fakeredis.FakeRedis(server=embedded_server(), decode_responses=True)
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
    )
