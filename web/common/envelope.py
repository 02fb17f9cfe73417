"""The response envelope ``{success, data, error, message, meta}``, for successes and errors alike
(README, "Using it")."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

STATUS_OF = {
    "VALIDATION_ERROR": 400,
    "PREFERENCE_DISABLED": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "IDEMPOTENCY_CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}


class ApiError(Exception):
    """Raised anywhere in a handler; the error middleware turns it into the envelope."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_OF[code]
        self.headers = headers or {}
        self.data = data


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def ok(
    data: Any = None,
    *,
    message: str = "ok",
    status: int = 200,
    meta: dict | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"success": True, "data": data, "error": None, "message": message, "meta": meta}
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def error(
    code: str, message: str, *, status: int | None = None, headers: dict[str, str] | None = None, data: Any = None
) -> web.Response:
    body = {"success": False, "data": data, "error": code, "message": message, "meta": None}
    return web.json_response(body, status=status or STATUS_OF[code], headers=headers, dumps=_dumps)


def page_meta(*, total: int, limit: int, page: int) -> dict:
    pages = math.ceil(total / limit) if limit else 0
    return {
        "total": total,
        "limit": limit,
        "page": page,
        "total_pages": pages,
        "has_next": page < pages,
        "has_previous": page > 1,
    }
