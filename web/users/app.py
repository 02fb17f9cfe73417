"""Assembly of the user service: the shared skeleton plus the users database and operations."""

from __future__ import annotations

import asyncio

from aiohttp import web

from models import passwords
from settings import Settings
from web.common import app_keys
from web.common.api import register
from web.common.app import check_postgres, check_redis, create_base_app
from web.users.operations import OPERATIONS


async def _warm_dummy_hash(app: web.Application) -> None:
    """Compute the unknown-email hash once at start, off the loop, so no login pays for it."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(app[app_keys.db_executor_key], passwords.dummy_hash)


def create_app(settings: Settings) -> web.Application:
    app = create_base_app(
        settings,
        service="users",
        checks={"postgres": check_postgres, "redis": check_redis},
        database_urls={"users": settings.users_database_url},
    )
    # Runs after the cleanup contexts' start-up half, so the executor exists by now.
    app.on_startup.append(_warm_dummy_hash)
    register(app, OPERATIONS)
    return app
