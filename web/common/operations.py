"""The two operations every HTTP service serves: ``/health`` (readiness, README "Deploying") and
``/metrics`` (Prometheus text, README "Metrics")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web
from msgspec import Struct

from web.common import app_keys
from web.common.api import Operation
from web.common.envelope import error, ok

#: Seconds a health check may take before its dependency counts as down.
HEALTH_TIMEOUT_S = 1.5

Check = Callable[[web.Application], Awaitable[bool]]


class Health(Struct):
    """Each dependency's state; ``degraded`` when one is down."""

    status: Literal["ok", "degraded"]
    checks: dict[str, Literal["ok", "down"]]


async def health(request: web.Request) -> web.Response:
    app = request.app
    checks = app[app_keys.health_checks_key]

    async def run(check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(app), HEALTH_TIMEOUT_S))
        except Exception:
            return False

    results = await asyncio.gather(*(run(c) for c in checks.values()))
    state = {name: ("ok" if good else "down") for name, good in zip(checks, results, strict=True)}
    healthy = all(results)
    data = {"status": "ok" if healthy else "degraded", "checks": state}
    if healthy:
        return ok(data, message="healthy")
    down = ", ".join(n for n, s in state.items() if s == "down")
    return error("SERVICE_UNAVAILABLE", f"dependency down: {down}", data=data)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[app_keys.metrics_key].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


OPERATIONS = [
    Operation(
        "GET",
        "/health",
        "health",
        "Health of the service and its dependencies",
        health,
        tags=("operations",),
        description="The gateway checks redis, rabbitmq, users and templates; the user and template services "
        "check postgres and redis. Use it for readiness.",
        response=Health,
        error_data=Health,
        errors=(503,),
        notes={503: "A dependency is down: error SERVICE_UNAVAILABLE, data the checks."},
        security="none",
        message="healthy",
    ),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        metrics,
        tags=("operations",),
        description="Prometheus text exposition format; see the README's Metrics section for every series.",
        response=str,
        security="none",
        media="text/plain",
        enveloped=False,
    ),
]
