"""aiohttp middlewares shared by the three services: correlation id, errors, metrics.

The error middleware is the one place an exception becomes a response: a known error becomes the
envelope with its code, anything else a 500 ``INTERNAL_ERROR`` whose traceback goes to the log only.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid

from aiohttp import web

from logs import correlation_id_var
from models.unavailable import UNAVAILABLE
from web.common.app_keys import correlation_id_key, metrics_key
from web.common.envelope import ApiError, error
from web.common.fields import CORRELATION_ID

log = logging.getLogger(__name__)

_CORRELATION_RE = re.compile(CORRELATION_ID)
HEADER = "X-Correlation-ID"


def _correlation_id(request: web.Request) -> str:
    given = request.headers.get(HEADER, "")
    # Generated ids need to be unique, not secret; random (reseeded in every forked process) is far
    # cheaper than uuid4's kernel call on the request path.
    return given if _CORRELATION_RE.match(given) else str(uuid.UUID(int=random.getrandbits(128), version=4))


@web.middleware
async def correlation_middleware(request: web.Request, handler):
    cid = _correlation_id(request)
    request[correlation_id_key] = cid
    token = correlation_id_var.set(cid)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[HEADER] = cid
            raise
        response.headers[HEADER] = cid
        return response
    finally:
        correlation_id_var.reset(token)


_HTTP_CODES = {
    400: ("VALIDATION_ERROR", "bad request"),
    401: ("UNAUTHORIZED", "unauthorized"),
    403: ("FORBIDDEN", "forbidden"),
    404: ("NOT_FOUND", "no such resource"),
    405: ("METHOD_NOT_ALLOWED", "method not allowed on this resource"),
    413: ("PAYLOAD_TOO_LARGE", "request body is larger than 1 MiB"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "unsupported media type"),
}


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return error(exc.code, exc.message, status=exc.status, headers=exc.headers, data=exc.data)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("INTERNAL_ERROR", exc.reason))
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error(code, message, status=exc.status, headers=headers)
    except UNAVAILABLE as exc:
        log.error("dependency unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
        return error(
            "SERVICE_UNAVAILABLE", "a dependency is unavailable; try again shortly", headers={"Retry-After": "5"}
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error("INTERNAL_ERROR", "internal error; quote the correlation id when reporting it")


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    started = time.perf_counter()
    status = 500
    try:
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in ("/metrics", "/metrics/"):
            # Gauges read from other systems (queue depths, breakers) are refreshed per scrape, here,
            # because the shared /metrics handler renders synchronously.
            await request.app[metrics_key].refresh(request.app)
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics = request.app[metrics_key]
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)


#: Outermost first: the correlation id wraps the error handler so errors carry it too.
MIDDLEWARES = [correlation_middleware, metrics_middleware, error_middleware]
