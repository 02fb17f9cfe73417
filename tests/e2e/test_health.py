"""/health follows its dependencies, and a send while one is down is a 503, never a lost 202."""

from __future__ import annotations

import shutil
import uuid

import pytest

from tests.support.ports import free_port
from tests.support.processes import herald_process, wait_for


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of the test's own on a spare port, so stopping it touches nothing else."""
    port = free_port()
    args = [
        shutil.which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    with herald_process(args, {}, tmp_path / "redis.log") as proc:
        import redis

        wait_for(lambda: _pings(redis, port), timeout=10, what="the private Redis")
        yield f"redis://127.0.0.1:{port}/0", proc


def _pings(redis, port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False


async def test_health_goes_503_when_redis_stops_and_sends_are_refused(
    aiohttp_server, aiohttp_client, env, private_redis
):
    from tests.support.processes import stop
    from tests.support.stack import start_stack

    url, proc = private_redis
    stack = await start_stack(aiohttp_server, aiohttp_client, {**env, "REDIS_URL": url})
    user, template = await stack.create_user(), await stack.create_template()
    resp = await stack.client.get("/health")
    assert resp.status == 200, await resp.text()

    stop(proc)
    resp = await stack.client.get("/health")
    body = await resp.json()
    assert resp.status == 503
    assert body["error"] == "SERVICE_UNAVAILABLE" and body["data"]["status"] == "degraded"
    assert body["data"]["checks"]["redis"] == "down" and body["data"]["checks"]["rabbitmq"] == "ok"

    resp = await stack.send(
        notification_type="email",
        user_id=user["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id=uuid.uuid4().hex,
    )
    body = await resp.json()
    assert resp.status == 503 and body["error"] == "SERVICE_UNAVAILABLE", body
    listing = await stack.client.get(f"/api/v1/notifications/?user_id={user['id']}", headers=stack.auth())
    assert (await listing.json())["meta"]["total"] == 0  # nothing half-recorded


async def test_health_goes_503_when_a_service_stops(stack):
    resp = await stack.client.get("/health")
    assert resp.status == 200
    await stack.servers[0].close()  # the user service
    resp = await stack.client.get("/health")
    body = await resp.json()
    assert resp.status == 503 and body["data"]["checks"]["users"] == "down"
    assert body["data"]["checks"]["templates"] == "ok"


async def test_health_answers_quickly_while_rabbitmq_is_unreachable(aiohttp_client, env):
    """Every process starts while a dependency is away and answers /health within 2 s meanwhile."""
    import time

    from settings import Settings
    from web.gateway.app import create_app

    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    client = await aiohttp_client(create_app(Settings.from_env({**env, "RABBITMQ_URL": dead})))
    started = time.monotonic()
    resp = await client.get("/health")
    body = await resp.json()
    assert time.monotonic() - started < 2.0
    assert resp.status == 503 and body["data"]["checks"]["rabbitmq"] == "down"
