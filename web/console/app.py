"""The console mounted on the gateway at ``/admin/`` as a sub-application (README, "Operator console").

A sub-application has its own middlewares (HTML error pages, the session gate), its own Jinja2
environment (autoescaping on) and its own static files, while the gateway's middlewares (correlation
id, metrics) still wrap it. Its handlers reach the gateway's resources (settings, Redis, the
notifications database, the publisher) through ``gateway_key``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from providers.rendering import Renderer
from web.common import app_keys
from web.console import routes
from web.console.app_keys import gateway_key, latency_key, renderer_key, services_key, sessions_key
from web.console.latency import SAMPLE_EVERY_S, LatencyWindow
from web.console.middlewares import pages_middleware, session_middleware
from web.console.pages import PREFIX
from web.console.services import Services
from web.console.sessions import SessionStore

STATIC = Path(__file__).parent / "static"


def setup_console(app: web.Application) -> None:
    """Mount the console on the gateway ``app``: ``/admin/`` and everything under it."""
    console = web.Application(middlewares=[pages_middleware, session_middleware])
    console[gateway_key] = app
    env = aiohttp_jinja2.setup(
        console,
        loader=jinja2.PackageLoader("web.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["utc"] = utc
    console.router.add_static("/static/", STATIC, name="static")
    for method, path, handler, name in routes.ROUTES:
        console.router.add_route(method, path, handler, name=name)
    console.cleanup_ctx.append(_console_ctx)
    app.add_subapp(PREFIX, console)


async def _console_ctx(console: web.Application):
    """Sessions and service calls on the gateway's Redis and HTTP client (opened before this runs),
    and the minute-by-minute snapshots behind the p95 figure."""
    gateway = console[gateway_key]
    console[sessions_key] = SessionStore(redis=gateway[app_keys.redis_key], keys=gateway[app_keys.redis_keys_key])
    console[services_key] = Services(settings=gateway[app_keys.settings_key], session=gateway[app_keys.http_client_key])
    console[renderer_key] = Renderer()
    window = LatencyWindow(gateway[app_keys.metrics_key].registry)
    console[latency_key] = window
    sampler = asyncio.get_running_loop().create_task(_sample(window))
    yield
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler


async def _sample(window: LatencyWindow) -> None:
    while True:
        await asyncio.sleep(SAMPLE_EVERY_S)
        window.sample()


def utc(value: dt.datetime | str | None, seconds: bool = True) -> str:
    """A time as the console shows every time: UTC, with the zone written out."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
