"""The template service's application: the shared base plus its renderer and render threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from providers.rendering import Renderer
from settings import Settings
from web.common.api import register
from web.common.app import check_postgres, check_redis, create_base_app
from web.templates.operations import OPERATIONS
from web.templates.service import render_executor_key, renderer_key

#: Render threads, apart from the database pool so slow templates cannot starve queries.
RENDER_THREADS = 4


def create_app(settings: Settings) -> web.Application:
    app = create_base_app(
        settings,
        service="templates",
        checks={"postgres": check_postgres, "redis": check_redis},
        database_urls={"templates": settings.templates_database_url},
    )
    app[renderer_key] = Renderer()
    app.cleanup_ctx.append(_render_pool_ctx)
    register(app, OPERATIONS)
    return app


async def _render_pool_ctx(app: web.Application):
    executor = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="render")
    app[render_executor_key] = executor
    yield
    executor.shutdown(wait=False, cancel_futures=True)
