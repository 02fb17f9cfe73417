"""Fixtures on the real services: each test gets its own database, Redis key prefix and, where it
publishes, its own RabbitMQ vhost; all are dropped afterwards.

Every test is also sorted into a tier: ``quick`` (pure logic, no service, seconds for the lot) or
``services``, so ``make test`` runs the quick tier first and a broken unit fails fast.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from models.base import bind_databases
from models.migrations import migrate
from settings import Settings
from tests.support import resources

JWT_SECRET = "test-secret-for-herald-0123456789"

# Importing any ``actors.*`` module runs ``actors/__init__.py``, which builds the worker broker from
# the environment (that is what ``dramatiq actors`` loads). Nothing connects at import; this only
# lets the tests that unit-test actor modules import them. Each test still builds its own settings.
os.environ.setdefault("JWT_SECRET", JWT_SECRET)


@pytest.fixture(scope="session")
def migrated_template():
    """A migrated database, copied (cheaply) for every test that needs one."""
    with resources.postgres_database() as url:
        dbs = bind_databases(users=url, templates=url, notifications=url)
        migrate(dbs)
        dbs.close()
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def database_url(migrated_template):
    with resources.postgres_database(template=migrated_template) as url:
        yield url


@pytest.fixture
def redis_prefix():
    with resources.redis_prefix() as prefix:
        yield prefix


@pytest.fixture(scope="session")
def session_vhost():
    """One vhost for tests that only publish; tests that need empty queues take ``rabbit_vhost``."""
    with resources.rabbit_vhost() as (url, _):
        yield url


@pytest.fixture
def rabbit_vhost():
    with resources.rabbit_vhost() as (url, name):
        yield url, name


def make_env(
    *, database_url: str, redis_prefix: str, rabbitmq_url: str | None = None, **overrides: str
) -> dict[str, str]:
    """The environment of a Herald process under test, on the real services."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": resources.REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "RABBITMQ_URL": rabbitmq_url or "amqp://guest:guest@127.0.0.1:5672/%2F",
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


@pytest.fixture
def env(database_url, redis_prefix, session_vhost):
    return make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=session_vhost)


@pytest.fixture
def settings(env) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
async def stack(aiohttp_server, aiohttp_client, env):
    """Gateway, user and template services on the test's database, Redis prefix and vhost."""
    from tests.support.stack import start_stack

    return await start_stack(aiohttp_server, aiohttp_client, env)


#: Fixtures that reach PostgreSQL, Redis or RabbitMQ (directly or through the ones they build on).
SERVICE_FIXTURES = {
    "migrated_template",
    "database_url",
    "redis_prefix",
    "session_vhost",
    "rabbit_vhost",
    "aiohttp_server",
    "aiohttp_client",
}
#: Folders whose tests run real processes against the services.
SERVICE_FOLDERS = {"e2e", "faults"}
#: A module naming one of these talks to a service without a fixture.
SERVICE_MARKERS = ("REDIS_URL", "rabbitmqctl", "resources.", "PG_ADMIN_DSN")


@functools.cache
def _module_uses_services(path: Path) -> bool:
    if SERVICE_FOLDERS & set(path.parts):
        return True
    source = path.read_text()
    return any(marker in source for marker in SERVICE_MARKERS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or _module_uses_services(item.path)
        item.add_marker(pytest.mark.services if uses else pytest.mark.quick)
