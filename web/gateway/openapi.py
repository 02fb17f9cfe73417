"""The OpenAPI 3.0.3 document of everything a client reaches on the gateway (port 8000).

The gateway's own routes and the user and template services' routes it forwards are described
together, because a client needs only this one port. The routes each handler serves are checked
against this document by ``tests/web/test_openapi.py`` in both directions, so an undocumented or
phantom operation fails the suite.
"""

from __future__ import annotations

import functools
from typing import Any

from messaging.dead_letters import MAX_SCAN as DLQ_MAX_SCAN
from web.gateway import openapi_schemas as s

Doc = dict[str, Any]

BEARER = [{"bearerAuth": []}]
#: Registration works without a token, but a token sent must be valid (an admin's may grant a role).
OPTIONAL_BEARER = [{}, {"bearerAuth": []}]

TAGS = [
    {"name": "notifications", "description": "Send a notification and follow its delivery."},
    {"name": "provider receipts", "description": "Delivery reports and bounces from the providers."},
    {"name": "dead letters", "description": "Notifications parked in failed.queue, and their replay (admin)."},
    {"name": "auth", "description": "Log in for a bearer token (forwarded to the user service)."},
    {"name": "users", "description": "Recipients and API users (forwarded to the user service)."},
    {
        "name": "templates",
        "description": "Versioned Jinja2 templates per (code, language) (forwarded to the template service).",
    },
    {"name": "operations", "description": "Health and metrics."},
    {"name": "documentation", "description": "This document and its page."},
]

#: name: (status, description, error codes, extra headers)
ERRORS: dict[str, tuple[str, str, list[str], tuple[str, ...]]] = {
    "BadRequest": (
        "400",
        "The request is malformed or a field is invalid; the message names it.",
        ["VALIDATION_ERROR"],
        (),
    ),
    "Unauthorized": ("401", "Missing, expired or invalid bearer token.", ["UNAUTHORIZED"], ("WWW-Authenticate",)),
    "Forbidden": ("403", "The token's role may not do this.", ["FORBIDDEN"], ()),
    "NotFound": ("404", "No such object, or it belongs to another user.", ["NOT_FOUND"], ()),
    "Conflict": ("409", "It already exists.", ["CONFLICT"], ()),
    "PayloadTooLarge": ("413", "The body is over 1 MiB.", ["PAYLOAD_TOO_LARGE"], ()),
    "RateLimited": ("429", "Too many requests; retry after Retry-After seconds.", ["RATE_LIMITED"], ("Retry-After",)),
    "InternalError": (
        "500",
        "An unexpected error; quote the X-Correlation-ID when reporting it.",
        ["INTERNAL_ERROR"],
        (),
    ),
    "ServiceUnavailable": (
        "503",
        "A dependency (storage, broker, or the service behind a forwarded path) is "
        "unavailable; retry after Retry-After seconds.",
        ["SERVICE_UNAVAILABLE"],
        ("Retry-After",),
    ),
}


@functools.cache
def document() -> Doc:
    """Built once: it depends only on code, and /openapi.json and /docs read it on every request.

    The returned dict is shared; callers must not modify it.
    """
    paths: Doc = {}
    ops = (*_notification_ops(), *_dead_letter_ops(), *_user_ops(), *_template_ops(), *_operations_ops())
    for path, method, operation in ops:
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Herald",
            "version": "1.0.0",
            "description": "One HTTP call in, e-mail or push out, reliably. Every path is served with and "
            "without its trailing slash. Every response body is the envelope "
            "`{success, data, error, message, meta}`; every response carries "
            "X-Correlation-ID (the request's, or a generated one). The gateway (port 8000) "
            "forwards /api/v1/auth, /api/v1/users and /api/v1/templates to their services.",
        },
        "tags": TAGS,
        "paths": paths,
        "components": _components(),
    }


# --- components -------------------------------------------------------------------------------


def _components() -> Doc:
    return {
        "schemas": s.all_schemas(),
        "responses": {name: _error(desc, codes, headers) for name, (_, desc, codes, headers) in ERRORS.items()},
        "parameters": _parameters(),
        "headers": {
            "X-Correlation-ID": _header(
                "The request's correlation id (echoed or generated); it is in every "
                "log line and message that follows from the request.",
                max_length=128,
            ),
            "Retry-After": {
                "description": "Whole seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 0},
            },
            "Idempotent-Replayed": _header(
                "true when this is the stored answer to an earlier identical request.", enum=["true"]
            ),
            "WWW-Authenticate": _header('Bearer realm="herald" when no token was sent.'),
        },
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "HS256 JWT from POST /api/v1/auth/login; claims exp, iss, aud, sub "
                "(the user id) and role (admin, service or user). Admin and service "
                "tokens act on any user, a user token only on itself.",
            },
        },
    }


def _header(description: str, *, max_length: int | None = None, **schema: Any) -> Doc:
    body = {"type": "string", **schema}
    if max_length is not None:
        body["maxLength"] = max_length
    return {"description": description, "schema": body}


def _param(name: str, where: str, schema: Doc, description: str, *, required: bool = False) -> Doc:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


def _parameters() -> Doc:
    language = {"type": "string", "pattern": s.templates.LANGUAGE_RE.pattern}
    correlation = {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"}
    return {
        "CorrelationId": _param(
            "X-Correlation-ID",
            "header",
            correlation,
            "Your id for this request; a missing or malformed one is replaced by a new UUID.",
        ),
        "Page": _param(
            "page",
            "query",
            {"type": "integer", "minimum": 1, "maximum": s.PAGE_MAX, "default": 1},
            "Page number, from 1.",
        ),
        "Limit": _param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": s.LIMIT_MAX, "default": s.LIMIT_DEFAULT},
            "Page size.",
        ),
        "NotificationId": _param("notification_id", "path", {"type": "string"}, "The notification's id."),
        "UserId": _param(
            "user_id", "path", {"type": "string", "format": "uuid"}, "The user's id; a malformed id answers 404."
        ),
        "TemplateCode": _param(
            "code",
            "path",
            {"type": "string", "pattern": s.templates.CODE_RE.pattern},
            "The template's code; an impossible code answers 404.",
        ),
        "Channel": _param("channel", "path", {"type": "string", "enum": ["email", "push"]}, "The provider's channel."),
        "Language": _param(
            "language",
            "query",
            {**language, "default": "en"},
            "Language tag; falls back to en when the template has no such version.",
        ),
    }


def _pref(name: str) -> Doc:
    return {"$ref": f"#/components/parameters/{name}"}


# --- responses --------------------------------------------------------------------------------


def _headers(*names: str) -> Doc:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Correlation-ID", *names)}


def _response(
    description: str, schema: Doc | None = None, *, media: str = "application/json", headers: tuple[str, ...] = ()
) -> Doc:
    out: Doc = {"description": description, "headers": _headers(*headers)}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


def _enveloped(data: Doc, *, listing: bool = False) -> Doc:
    """The envelope with its ``data`` (and, for lists, ``meta``) narrowed."""
    extra: Doc = {"data": data}
    if listing:
        extra = {"data": {"type": "array", "items": data}, "meta": s.ref("PaginationMeta")}
    return {"allOf": [s.ref("Envelope"), {"type": "object", "properties": extra}]}


def _ok(description: str, data: Doc, *, listing: bool = False, headers: tuple[str, ...] = ()) -> Doc:
    return _response(description, _enveloped(data, listing=listing), headers=headers)


def _error(description: str, codes: list[str], headers: tuple[str, ...] = ()) -> Doc:
    narrowed = {"type": "object", "properties": {"error": {"type": "string", "enum": codes}}}
    return _response(description, {"allOf": [s.ref("Error"), narrowed]}, headers=headers)


def _op(
    op_id: str,
    tag: str,
    summary: str,
    *,
    ok: dict[str, Doc],
    errors: tuple[str, ...] = (),
    more: dict[str, Doc] | None = None,
    security: list | None = BEARER,
    params: tuple[Doc, ...] = (),
    body: str | None = None,
    forwarded: bool = False,
    description: str = "",
) -> Doc:
    """One operation; the error answers every operation shares are added here, not repeated."""
    names = list(errors)
    if security is BEARER:
        names.append("Unauthorized")
    if body is not None:
        names += ["BadRequest", "PayloadTooLarge"]
    if forwarded:
        names.append("ServiceUnavailable")
    names.append("InternalError")
    responses = dict(ok)
    for name in names:
        responses.setdefault(ERRORS[name][0], {"$ref": f"#/components/responses/{name}"})
    responses.update(more or {})
    operation: Doc = {
        "operationId": op_id,
        "tags": [tag],
        "summary": summary,
        "parameters": [*params, _pref("CorrelationId")],
        "responses": dict(sorted(responses.items())),
        "security": security or [],
    }
    if description:
        operation["description"] = description
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": s.ref(body)}}}
    return operation


# --- operations -------------------------------------------------------------------------------


def _notification_ops() -> list[tuple[str, str, Doc]]:
    filters = (
        _param(
            "user_id",
            "query",
            {"type": "string", "format": "uuid"},
            "Only this user's; a user token may give only its own id (403 otherwise).",
        ),
        _param("status", "query", {"type": "string", "enum": ["pending", "delivered", "failed"]}, "Only this status."),
        _param("notification_type", "query", {"type": "string", "enum": ["email", "push"]}, "Only this channel."),
    )
    send = _op(
        "sendNotification",
        "notifications",
        "Send a notification",
        body="SendRequest",
        description="Checks in order: auth, validation, idempotency, user and template, preference, push token, "
        "rate limit, publish. 202 only after the broker confirmed a persistent publish.",
        ok={
            "202": _ok("Accepted and queued.", s.ref("Accepted")),
            "200": _ok(
                "A repeat of an accepted request (same caller, request_id and body within 24 h): the original answer.",
                s.ref("Accepted"),
                headers=("Idempotent-Replayed",),
            ),
        },
        errors=("Forbidden", "NotFound", "RateLimited", "ServiceUnavailable"),
        more={
            "400": _error(
                "Invalid field, the user's preference for the channel off (PREFERENCE_DISABLED), "
                "a push to a user without a push token, or variables the template cannot render.",
                ["VALIDATION_ERROR", "PREFERENCE_DISABLED"],
            ),
            "409": _error(
                "The request_id was used with a different body, or is still being processed.", ["IDEMPOTENCY_CONFLICT"]
            ),
        },
    )
    listing = _op(
        "listNotifications",
        "notifications",
        "List notifications, newest first",
        params=(*filters, _pref("Page"), _pref("Limit")),
        description="Every filter is optional; a user token sees only its own notifications.",
        ok={"200": _ok("A page of notifications.", s.ref("Notification"), listing=True)},
        errors=("BadRequest", "Forbidden", "ServiceUnavailable"),
    )
    one = _op(
        "getNotification",
        "notifications",
        "A notification's status, attempts and timestamps",
        params=(_pref("NotificationId"),),
        ok={"200": _ok("The notification.", s.ref("Notification"))},
        errors=("NotFound", "ServiceUnavailable"),
    )
    receipt = _op(
        "recordProviderReceipt",
        "provider receipts",
        "Record a provider's receipt or bounce",
        params=(_pref("Channel"),),
        body="ProviderReceipt",
        description="Admin or service token. Sets the notification's status and adds the receipt to its attempts.",
        ok={"200": _ok("Recorded; the updated notification.", s.ref("Notification"))},
        errors=("Forbidden", "NotFound", "ServiceUnavailable"),
    )
    return [
        ("/api/v1/notifications/", "post", send),
        ("/api/v1/notifications/", "get", listing),
        ("/api/v1/notifications/{notification_id}", "get", one),
        ("/api/v1/{channel}/status/", "post", receipt),
    ]


def _dead_letter_ops() -> list[tuple[str, str, Doc]]:
    listing = _op(
        "listDeadLetters",
        "dead letters",
        "List the dead letters in failed.queue (admin)",
        params=(_pref("Page"), _pref("Limit")),
        description="Admin token. Read from the head of failed.queue without removing anything: the "
        "messages are taken and handed straight back, so they are marked redelivered. "
        f"Only the first {DLQ_MAX_SCAN} are looked at; later pages are empty, and "
        "meta.total is the queue's depth.",
        ok={"200": _ok("A page of dead letters, oldest first.", s.ref("DeadLetter"), listing=True)},
        errors=("BadRequest", "Forbidden", "ServiceUnavailable"),
    )
    replay = _op(
        "replayDeadLetter",
        "dead letters",
        "Replay a dead letter (admin)",
        params=(_pref("NotificationId"),),
        description="Admin token. The notification goes back to pending, its message back onto its "
        "queue with a fresh retry budget (same notification_id and request_id), and only "
        "after the broker confirmed it is the dead letter removed. A dead letter of an "
        "already delivered notification is removed without a resend.",
        ok={"200": _ok("Replayed (or removed as already delivered).", s.ref("DeadLetterReplay"))},
        errors=("Forbidden", "NotFound", "ServiceUnavailable"),
        more={"409": _error("The dead letter has no notification record or no channel; it stays.", ["CONFLICT"])},
    )
    return [
        ("/api/v1/dead-letters/", "get", listing),
        ("/api/v1/dead-letters/{notification_id}/replay", "post", replay),
    ]


def _user_ops() -> list[tuple[str, str, Doc]]:
    user = functools.partial(_op, tag="users", forwarded=True)
    create = user(
        "createUser",
        summary="Register a user",
        body="UserCreate",
        security=OPTIONAL_BEARER,
        description="Open to anyone. A token, when sent, must be valid; only an admin's may set role.",
        ok={"201": _ok("Created.", s.ref("User"))},
        errors=("Forbidden", "Conflict"),
        more={"401": {"$ref": "#/components/responses/Unauthorized"}},
    )
    listing = user(
        "listUsers",
        summary="List users (admin and service tokens)",
        params=(_pref("Page"), _pref("Limit")),
        ok={"200": _ok("A page of users.", s.ref("User"), listing=True)},
        errors=("BadRequest", "Forbidden"),
    )
    one = user(
        "getUser",
        summary="A user's profile",
        params=(_pref("UserId"),),
        ok={"200": _ok("The user.", s.ref("User"))},
        errors=("NotFound",),
    )
    update = user(
        "updateUser",
        summary="Change a user's profile",
        params=(_pref("UserId"),),
        body="UserUpdate",
        description="A user token may change only itself, and not its role or is_active.",
        ok={"200": _ok("The updated user.", s.ref("User"))},
        errors=("Forbidden", "NotFound", "Conflict"),
    )
    delete = user(
        "deactivateUser",
        summary="Deactivate a user",
        params=(_pref("UserId"),),
        description="The user stays, with is_active false; it can no longer log in or be sent to.",
        ok={"200": _ok("The deactivated user.", s.ref("User"))},
        errors=("NotFound",),
    )
    login = _op(
        "login",
        "auth",
        "Log in",
        body="LoginRequest",
        security=None,
        forwarded=True,
        ok={"200": _ok("A bearer token.", s.ref("Token"))},
        more={"401": _error("Unknown e-mail, wrong password or inactive user (one answer for all).", ["UNAUTHORIZED"])},
    )
    item = "/api/v1/users/{user_id}"
    return [
        ("/api/v1/users/", "post", create),
        ("/api/v1/users/", "get", listing),
        (item, "get", one),
        (item, "patch", update),
        (item, "delete", delete),
        ("/api/v1/auth/login", "post", login),
    ]


def _template_ops() -> list[tuple[str, str, Doc]]:
    template = functools.partial(_op, tag="templates", forwarded=True)
    code = _pref("TemplateCode")
    create = template(
        "createTemplate",
        summary="Create a template (admin and service tokens)",
        body="TemplateCreate",
        ok={"201": _ok("Created, version 1.", s.ref("Template"))},
        errors=("Forbidden", "Conflict"),
    )
    listing = template(
        "listTemplates",
        summary="List templates",
        params=(
            _param("code", "query", {"type": "string"}, "Only this code."),
            _param(
                "language",
                "query",
                {"type": "string", "pattern": s.templates.LANGUAGE_RE.pattern},
                "Only this language.",
            ),
            _pref("Page"),
            _pref("Limit"),
        ),
        ok={"200": _ok("A page of templates.", s.ref("Template"), listing=True)},
        errors=("BadRequest",),
    )
    one = template(
        "getTemplate",
        summary="A template in a language",
        params=(code, _pref("Language")),
        description="Falls back to en when there is no version in the language asked for.",
        ok={"200": _ok("The template.", s.ref("Template"))},
        errors=("BadRequest", "NotFound"),
    )
    update = template(
        "updateTemplate",
        summary="Save a new version (admin and service tokens)",
        params=(code,),
        body="TemplateUpdate",
        ok={"200": _ok("The template at its new version.", s.ref("Template"))},
        errors=("Forbidden", "NotFound"),
    )
    versions = template(
        "listTemplateVersions",
        summary="A template's version history, newest first",
        params=(code, _pref("Language"), _pref("Page"), _pref("Limit")),
        ok={"200": _ok("A page of versions.", s.ref("TemplateVersion"), listing=True)},
        errors=("BadRequest", "NotFound"),
    )
    render = template(
        "renderTemplate",
        summary="Render a template with variables",
        params=(code,),
        body="RenderRequest",
        description="Sandboxed; HTML is autoescaped.",
        ok={"200": _ok("The rendered subject and body.", s.ref("Rendered"))},
        errors=("NotFound",),
    )
    item = "/api/v1/templates/{code}"
    return [
        ("/api/v1/templates/", "post", create),
        ("/api/v1/templates/", "get", listing),
        (item, "get", one),
        (item, "put", update),
        (item + "/versions", "get", versions),
        (item + "/render", "post", render),
    ]


def _operations_ops() -> list[tuple[str, str, Doc]]:
    health = _op(
        "health",
        "operations",
        "Health of the gateway and its dependencies",
        security=None,
        ok={"200": _ok("Every check is ok.", s.ref("Health"))},
        more={
            "503": _response(
                "A check is down: error SERVICE_UNAVAILABLE, data the checks.",
                {"allOf": [s.ref("Error"), {"type": "object", "properties": {"data": s.ref("Health")}}]},
            )
        },
    )
    metrics = _op(
        "metrics",
        "operations",
        "Prometheus metrics",
        security=None,
        ok={"200": _response("Prometheus text exposition format.", {"type": "string"}, media="text/plain")},
    )
    spec = _op(
        "openapiDocument",
        "documentation",
        "This OpenAPI document",
        security=None,
        description="Plain JSON, not wrapped in the envelope.",
        ok={"200": _response("The OpenAPI 3.0 document.", {"type": "object"})},
    )
    page = _op(
        "docsPage",
        "documentation",
        "This document as a web page",
        security=None,
        ok={"200": _response("An HTML page, readable offline.", {"type": "string"}, media="text/html")},
    )
    return [
        ("/health", "get", health),
        ("/metrics", "get", metrics),
        ("/openapi.json", "get", spec),
        ("/docs", "get", page),
    ]
