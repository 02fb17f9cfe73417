"""The gateway application: shared skeleton, publisher, service client, send pipeline, operations,
forwarded paths and the API reference."""

from __future__ import annotations

import aiohttp
import dramatiq
from aiohttp import web

from messaging.rabbitmq import HeraldBroker
from models.redis_client import sync_client
from models.status_writer import StatusWriter
from providers.rendering import Renderer
from settings import Settings
from web.common import api_key_auth, app_keys, swagger_ui
from web.common.api import register
from web.common.app import check_redis, create_base_app
from web.console import setup_console
from web.gateway import integration_operations, operations, reference, routes
from web.gateway.app_keys import pipeline_key, publisher_key, status_writer_key
from web.gateway.guards import Idempotency, RateLimiter
from web.gateway.lookups import Lookups, ServiceClient
from web.gateway.metrics import GatewayMetrics
from web.gateway.publisher import Publisher
from web.gateway.recorder import Recorder
from web.gateway.sending import SendPipeline


def create_app(settings: Settings, *, broker: dramatiq.Broker | None = None) -> web.Application:
    """The gateway; ``broker`` is given only by ``make run`` (its in-process broker)."""
    app = create_base_app(
        settings,
        service="gateway",
        checks={
            "redis": check_redis,
            "rabbitmq": _check_rabbitmq,
            "users": _check_users,
            "templates": _check_templates,
        },
        database_urls={"notifications": settings.notifications_database_url},
    )
    app[app_keys.metrics_key] = GatewayMetrics()  # the send-path counters and scrape-time gauges too
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(lambda app: _publisher_ctx(app, broker))
    register(app, [*operations.OPERATIONS, *integration_operations.OPERATIONS, *reference.OPERATIONS])
    app.cleanup_ctx.append(_api_keys_ctx)
    for method, path, handler in routes.forwarded_routes():
        app.router.add_route(method, path, handler)
    swagger_ui.setup(app)
    setup_console(app)
    return app


async def _api_keys_ctx(app: web.Application):
    """The API-key authenticator: keys are looked up in the notifications database, which only the
    gateway has, so only the gateway takes them (it forwards a key's caller to the services)."""
    authenticator = api_key_auth.for_app(app)
    app[app_keys.api_keys_key] = authenticator
    yield
    await authenticator.flush()


async def _http_ctx(app: web.Application):
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300))
    app[app_keys.http_client_key] = session
    yield
    await session.close()


async def _publisher_ctx(app: web.Application, broker: dramatiq.Broker | None):
    """The publisher and everything the send path builds on it; the blocking Redis client serves
    the publishing threads (a dead-letter replay's status mirror)."""
    settings = app[app_keys.settings_key]
    if broker is None:
        publisher = Publisher(broker=HeraldBroker(url=settings.rabbitmq_url, middleware=[]), url=settings.rabbitmq_url)
    else:
        publisher = Publisher(broker=broker)
    publisher.start()
    app[publisher_key] = publisher
    redis, redis_keys = app[app_keys.redis_key], app[app_keys.redis_keys_key]
    blocking_redis = sync_client(settings.redis_url)
    app[status_writer_key] = StatusWriter(redis=blocking_redis, keys=redis_keys)
    idempotency = Idempotency(redis=redis, keys=redis_keys)
    app[pipeline_key] = SendPipeline(
        app=app,
        lookups=Lookups(
            redis=redis,
            keys=redis_keys,
            settings=settings,
            client=ServiceClient(settings=settings, session=app[app_keys.http_client_key]),
        ),
        idempotency=idempotency,
        limiter=RateLimiter(keys=redis_keys, per_hour=settings.rate_limit_per_hour),
        publisher=publisher,
        recorder=Recorder(app=app, publisher=publisher, idempotency=idempotency),
        renderer=Renderer(),
    )
    yield
    await publisher.close()
    blocking_redis.close()


async def _check_rabbitmq(app: web.Application) -> bool:
    return await app[publisher_key].ping()


async def _check_service(app: web.Application, base: str) -> bool:
    async with app[app_keys.http_client_key].get(base + "/health", timeout=aiohttp.ClientTimeout(total=1.2)) as r:
        return r.status == 200


async def _check_users(app: web.Application) -> bool:
    return await _check_service(app, app[app_keys.settings_key].user_service_url)


async def _check_templates(app: web.Application) -> bool:
    return await _check_service(app, app[app_keys.settings_key].template_service_url)
