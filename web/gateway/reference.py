"""``/openapi.json`` and ``/docs``: the whole API a client reaches on port 8000, in one document.

The gateway's own operations and those of the user and template services it forwards are
documented together from their declarations (ARCHITECTURE.md, "Where each policy lives"), with the
links that feed one into another across services: a new user or template into a send, a send into
its status and receipts.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from aiohttp import web

from web.common import operations as common_operations
from web.common import swagger_ui
from web.common.api import Operation
from web.common.openapi import build
from web.common.openapi30 import to_openapi_30
from web.gateway import integration_operations
from web.gateway import operations as gateway_operations
from web.templates import operations as templates_operations
from web.users import operations as users_operations

TITLE = "Herald"
VERSION = "1.0.0"
DESCRIPTION = (
    "One HTTP call in, e-mail or push out, reliably.\n\n"
    "Every path is served with and without its trailing slash. Every response body is the envelope "
    "`{success, data, error, message, meta}` (`meta` is the pagination on lists); a refusal carries a stable "
    "upper-case `error` code and a `message` naming the field at fault, never a stack trace. Every response "
    "carries `X-Correlation-ID`: the request's, or a new UUID when none or a malformed one was sent (a malformed "
    "one is replaced, not refused). Bodies over 1 MiB answer 413. An optional field sent as null means the same as "
    "leaving it out, except where its description says null clears it.\n\n"
    "The gateway forwards `/api/v1/auth`, `/api/v1/users` and `/api/v1/templates` to the user and template "
    "services, so a client needs only this port. Authorize with a token from `POST /api/v1/auth/login`."
)
BEARER = (
    "HS256 JWT from POST /api/v1/auth/login; claims exp, iss, aud, sub (the user id) and role (admin, service or "
    "user). Admin and service tokens act on any user; a user token only on itself. Or an API key (hk_live_... or "
    "hk_test_..., from POST /api/v1/api-keys/), which acts as a service token with caller apikey:<id>; a test key's "
    "sends never reach a provider."
)
TAGS = [
    *gateway_operations.TAGS,
    *integration_operations.TAGS,
    *users_operations.TAGS,
    *templates_operations.TAGS,
    {"name": "operations", "description": "Health and metrics (every service serves both on its own port)."},
    {"name": "documentation", "description": "This document and its interactive page."},
]
#: Links from one service's answer into another's operation.
ACROSS = {
    "createUser": {
        "SendToUser": {"operationId": "sendNotification", "requestBody": {"user_id": "$response.body#/data/id"}}
    },
    "createTemplate": {
        "SendWithTemplate": {
            "operationId": "sendNotification",
            "requestBody": {"template_code": "$response.body#/data/code"},
        }
    },
}
FORWARDED_503 = "The service behind this path is unavailable, or one of its stores is."


async def openapi_json(request: web.Request) -> web.Response:
    """A document for tools: plain JSON, not the envelope."""
    return web.Response(body=document_json(), content_type="application/json")


OPERATIONS = [
    Operation(
        "GET",
        "/openapi.json",
        "openapiDocument",
        "This OpenAPI document",
        openapi_json,
        tags=("documentation",),
        description="OpenAPI 3.0.3, plain JSON (not the envelope).",
        response=dict[str, Any],
        security="none",
        enveloped=False,
    ),
    Operation(
        "GET",
        "/docs",
        "docsPage",
        "The interactive API reference (Swagger UI)",
        swagger_ui.page,
        tags=("documentation",),
        description="Served entirely by Herald, no asset from the internet; Authorize takes a bearer token and "
        "keeps it across reloads.",
        response=str,
        security="none",
        media="text/html",
        enveloped=False,
    ),
]


def all_operations() -> list[Operation]:
    """Every operation a client reaches through the gateway."""
    forwarded = [
        dataclasses.replace(
            op, links={**op.links, **ACROSS.get(op.operation_id, {})}, notes={503: FORWARDED_503, **op.notes}
        )
        for op in (*users_operations.OPERATIONS, *templates_operations.OPERATIONS)
    ]
    return [
        *gateway_operations.OPERATIONS,
        *integration_operations.OPERATIONS,
        *forwarded,
        *common_operations.OPERATIONS,
        *OPERATIONS,
    ]


@functools.cache
def document() -> dict[str, Any]:
    """Built once, since it depends on code only; callers must not change the dict."""
    doc = build(all_operations(), title=TITLE, version=VERSION, description=DESCRIPTION, tags=TAGS, bearer=BEARER)
    return to_openapi_30(doc)


@functools.cache
def document_json() -> bytes:
    return json.dumps(document(), separators=(",", ":")).encode()
