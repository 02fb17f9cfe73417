"""Small, explicit request validation: each check names the field it rejects.

A hand-written checker rather than a schema library: the bodies are small, the messages must name
the field in the API's words, and the hot path (the send request) must stay cheap.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import web

from web.common.envelope import ApiError

EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def fail(message: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", message)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says why not (413 comes from the size limit)."""
    raw = await request.read()
    if not raw:
        raise fail("request body is empty; expected a JSON object")
    if b"\\u0000" in raw:
        # PostgreSQL's text and jsonb cannot hold NUL; refuse it here rather than fail at storage.
        raise fail("request body must not contain NUL characters (\\u0000)")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise fail("request body is not valid JSON (or is nested too deeply)") from None
    if not isinstance(body, dict):
        raise fail("request body must be a JSON object")
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def reject_unknown(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise fail(f"unknown field(s): {', '.join(unknown)}")


def string(
    body: dict,
    name: str,
    *,
    required: bool = True,
    min_len: int = 1,
    max_len: int = 1000,
    default: str | None = None,
    single_line: bool = False,
) -> str | None:
    if name not in body or body[name] is None:
        if required:
            raise fail(f"{name} is required")
        return default
    value = body[name]
    if not isinstance(value, str):
        raise fail(f"{name} must be a string")
    if not min_len <= len(value) <= max_len:
        raise fail(f"{name} must be {min_len} to {max_len} characters long")
    if single_line and CONTROL_RE.search(value):
        raise fail(f"{name} must not contain control characters (CR, LF, NUL, ...)")
    return value


def email(body: dict, name: str = "email", *, required: bool = True) -> str | None:
    value = string(body, name, required=required, max_len=320, single_line=True)
    if value is not None and not EMAIL_RE.match(value):
        raise fail(f"{name} is not a valid e-mail address")
    return value.lower() if value is not None else None


def integer(
    body: dict, name: str, *, low: int, high: int, default: int | None = None, required: bool = False
) -> int | None:
    if name not in body or body[name] is None:
        if required:
            raise fail(f"{name} is required")
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{name} must be an integer")
    if not low <= value <= high:
        raise fail(f"{name} must be between {low} and {high}")
    return value


def boolean(body: dict, name: str, *, default: bool | None = None) -> bool | None:
    if name not in body or body[name] is None:
        return default
    if not isinstance(body[name], bool):
        raise fail(f"{name} must be true or false")
    return body[name]


def obj(
    body: dict, name: str, *, required: bool = False, default: dict | None = None, max_bytes: int = 64 * 1024
) -> dict | None:
    if name not in body or body[name] is None:
        if required:
            raise fail(f"{name} is required")
        return default
    value = body[name]
    if not isinstance(value, dict):
        raise fail(f"{name} must be a JSON object")
    if len(json.dumps(value, default=str)) > max_bytes:
        raise fail(f"{name} is larger than {max_bytes} bytes")
    return value


def uuid_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise fail(f"{name} must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise fail(f"{name} must be a UUID") from None


def paging(request: web.Request, *, max_limit: int = 100) -> tuple[int, int]:
    """``page`` (from 1) and ``limit`` (1..max_limit) from the query string."""

    def read(name: str, default: int, low: int, high: int) -> int:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise fail(f"{name} must be an integer") from None
        if not low <= value <= high:
            raise fail(f"{name} must be between {low} and {high}")
        return value

    return read("page", 1, 1, 10**6), read("limit", 20, 1, max_limit)
