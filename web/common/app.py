"""The skeleton every Herald HTTP service is built on: middlewares, contexts, /health and /metrics.

Resources live under ``web.AppKey`` and are opened and closed by ``cleanup_ctx`` generators; peewee,
being synchronous, runs only in the app's bounded thread pool (:func:`in_db`), never on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import peewee
from aiohttp import web

from models.base import bind_databases
from models.redis_client import async_client
from models.redis_keys import RedisKeys
from settings import Settings
from web.common import app_keys, operations
from web.common.api import register
from web.common.metrics import HttpMetrics
from web.common.middlewares import MIDDLEWARES
from web.common.operations import Check

#: The body limit (1 MiB); aiohttp answers 413 past it and the error middleware wraps it.
MAX_BODY = 1024 * 1024
#: Threads (each holding one pooled connection) for peewee work; several apps may share a pool in
#: one process (``make run``, tests), so this stays well under ``POOL_SIZE``.
DB_THREADS = 8


def create_base_app(
    settings: Settings, *, service: str, checks: dict[str, Check], database_urls: dict[str, str | None] | None = None
) -> web.Application:
    """An application with the shared middlewares, Redis, optional databases, /health and /metrics."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=MIDDLEWARES)
    app[app_keys.settings_key] = settings
    app[app_keys.redis_keys_key] = RedisKeys(settings.redis_key_prefix)
    app[app_keys.metrics_key] = HttpMetrics(service=service)
    app.cleanup_ctx.append(_redis_ctx)
    if database_urls:
        app.cleanup_ctx.append(functools.partial(_database_ctx, urls=database_urls))
    app[app_keys.health_checks_key] = checks
    register(app, operations.OPERATIONS)
    return app


async def _redis_ctx(app: web.Application):
    client = async_client(app[app_keys.settings_key].redis_url)
    app[app_keys.redis_key] = client
    yield
    await client.aclose()


async def _database_ctx(app: web.Application, *, urls: dict[str, str | None]):
    app[app_keys.databases_key] = bind_databases(**urls)
    executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="db")
    app[app_keys.db_executor_key] = executor
    yield
    executor.shutdown(wait=True)
    app[app_keys.databases_key].close()


async def in_db(app: web.Application, fn: Callable[..., Any], *args: Any, atomic: bool = True, **kwargs: Any) -> Any:
    """Run ``fn`` (peewee work) in the app's database threads, in a transaction unless ``atomic=False``.

    Each thread keeps its pooled connection between units: checking a connection out and back in
    per request costs more than the query. A connection that fails is closed, so the next unit on
    that thread checks out a fresh one (after a PostgreSQL restart, say).
    """
    dbs = app[app_keys.databases_key]

    def unit() -> Any:
        for db in dbs.distinct():
            db.connect(reuse_if_open=True)
        try:
            if not atomic:
                return fn(*args, **kwargs)
            with _atomic(dbs):
                return fn(*args, **kwargs)
        except (peewee.OperationalError, peewee.InterfaceError):
            for db in dbs.distinct():
                with contextlib.suppress(Exception):
                    db.close()
            raise

    return await asyncio.get_running_loop().run_in_executor(app[app_keys.db_executor_key], unit)


class _atomic:
    """One transaction per database the unit touches (usually just one)."""

    def __init__(self, dbs) -> None:
        self.ctxs = [db.atomic() for db in dbs.distinct()]

    def __enter__(self):
        for ctx in self.ctxs:
            ctx.__enter__()

    def __exit__(self, *exc):
        for ctx in reversed(self.ctxs):
            ctx.__exit__(*exc)
        return False


async def check_redis(app: web.Application) -> bool:
    return bool(await app[app_keys.redis_key].ping())


async def check_postgres(app: web.Application) -> bool:
    def ping() -> bool:
        for db in app[app_keys.databases_key].distinct():
            db.execute_sql("SELECT 1")
        return True

    try:
        return await in_db(app, ping)
    except (peewee.OperationalError, peewee.InterfaceError):
        # A pooled connection that died since its last use (a PostgreSQL restart) fails once and is
        # dropped; a second try on a fresh connection tells whether PostgreSQL itself is down.
        return await in_db(app, ping)
