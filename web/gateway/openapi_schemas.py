"""The OpenAPI component schemas: the envelope and every object the API takes or returns.

Limits are taken from the modules that enforce them wherever they are named there, so the
document cannot drift from what the handlers actually accept.
"""

from __future__ import annotations

from typing import Any

from models.notification import CHANNELS, DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, STATUSES
from models.template import LANGUAGE_RE
from models.user import ROLES
from web.common.envelope import STATUS_OF
from web.templates import service as templates
from web.users import service as users

Schema = dict[str, Any]

#: The error codes every client may meet, in the README's order; the envelope's table may add transport-level ones.
CONTRACT_ERROR_CODES = (
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "IDEMPOTENCY_CONFLICT",
    "PREFERENCE_DISABLED",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "PAYLOAD_TOO_LARGE",
    "INTERNAL_ERROR",
)
ERROR_CODES = [*CONTRACT_ERROR_CODES, *(code for code in STATUS_OF if code not in CONTRACT_ERROR_CODES)]
PAGE_MAX, LIMIT_MAX, LIMIT_DEFAULT = 10**6, 100, 20


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string(description: str = "", **kw: Any) -> Schema:
    return _described({"type": "string", **kw}, description)


def integer(description: str = "", **kw: Any) -> Schema:
    return _described({"type": "integer", **kw}, description)


def boolean(description: str = "", **kw: Any) -> Schema:
    return _described({"type": "boolean", **kw}, description)


def timestamp(description: str, *, nullable: bool = False) -> Schema:
    return string(description + " (UTC, ISO 8601 with Z)", format="date-time", **_null(nullable))


def uuid(description: str) -> Schema:
    return string(description, format="uuid")


def free_object(description: str, **kw: Any) -> Schema:
    return _described({"type": "object", "additionalProperties": True, **kw}, description)


def obj(
    properties: dict[str, Schema],
    *,
    required: tuple[str, ...] = (),
    closed: bool = True,
    description: str = "",
    **kw: Any,
) -> Schema:
    """Request bodies are closed because the handlers reject unknown fields with a 400."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return _described({**schema, **kw}, description)


def _described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description} if description else schema


def _null(nullable: bool) -> dict[str, bool]:
    return {"nullable": True} if nullable else {}


def _language(description: str, **kw: Any) -> Schema:
    return string(description, pattern=LANGUAGE_RE.pattern, example="pt-BR", **kw)


# --- envelope ---------------------------------------------------------------------------------


def envelope_schemas() -> dict[str, Schema]:
    return {
        "Envelope": obj(
            {
                "success": boolean("true on 2xx answers, false on errors"),
                "data": {"description": "the answer's payload; null on most errors"},
                "error": string("null on success, else a stable code", nullable=True, enum=[*ERROR_CODES, None]),
                "message": string("a human-readable summary"),
                "meta": {
                    "type": "object",
                    "nullable": True,
                    "allOf": [ref("PaginationMeta")],
                    "description": "pagination, on list endpoints only",
                },
            },
            required=("success", "data", "error", "message", "meta"),
            closed=False,
            description="Every response body of the API, errors included.",
        ),
        "PaginationMeta": obj(
            {
                "total": integer("items matching the query", minimum=0),
                "limit": integer("page size", minimum=1, maximum=LIMIT_MAX),
                "page": integer("this page, from 1", minimum=1),
                "total_pages": integer("ceil(total / limit)", minimum=0),
                "has_next": boolean(),
                "has_previous": boolean(),
            },
            required=("total", "limit", "page", "total_pages", "has_next", "has_previous"),
            closed=False,
        ),
        "ErrorCode": string("A stable, upper-case error code.", enum=ERROR_CODES),
        "Error": obj(
            {
                "success": boolean(enum=[False]),
                "data": {"description": "null, except on /health's 503 (the checks)"},
                "error": ref("ErrorCode"),
                "message": string("what went wrong, naming the offending field where there is one"),
                "meta": {"type": "object", "nullable": True, "enum": [None]},
            },
            required=("success", "data", "error", "message", "meta"),
            closed=False,
            description="The envelope of a failed request.",
        ),
    }


# --- notifications ----------------------------------------------------------------------------


def notification_schemas() -> dict[str, Schema]:
    return {
        "SendRequest": obj(
            {
                "notification_type": string("the channel", enum=list(CHANNELS)),
                "user_id": uuid("the recipient"),
                "template_code": string("the template to render", minLength=1, maxLength=100),
                "variables": free_object(
                    "Template variables: name, link (an http(s) URL), meta, image (push), and any other key "
                    "the template uses. At most 64 KiB as JSON.",
                    default={},
                    nullable=True,
                    properties={
                        "link": string("an http(s) URL", format="uri", maxLength=2048, nullable=True),
                        "image": string("image URL shown with a push notification"),
                    },
                ),
                "request_id": string(
                    "the caller's idempotency key; a repeat within 24 h is a replay", minLength=1, maxLength=128
                ),
                "priority": integer(
                    "queue priority, 10 highest",
                    minimum=MIN_PRIORITY,
                    maximum=MAX_PRIORITY,
                    default=DEFAULT_PRIORITY,
                    nullable=True,
                ),
                "metadata": free_object(
                    "kept with the notification; at most 64 KiB as JSON", default={}, nullable=True
                ),
            },
            required=("notification_type", "user_id", "template_code", "request_id"),
        ),
        "Accepted": obj(
            {
                "notification_id": uuid("the new notification's id"),
                "request_id": string(),
                "status": string(enum=["pending"]),
                "created_at": timestamp("acceptance time"),
            },
            required=("notification_id", "request_id", "status", "created_at"),
            closed=False,
        ),
        "Attempt": obj(
            {
                "time": timestamp("when"),
                "outcome": string("delivered, a failure kind, or receipt (a provider's report)"),
                "error": string(nullable=True),
            },
            required=("time", "outcome", "error"),
            closed=False,
        ),
        "Notification": obj(
            {
                "notification_id": string(),
                "request_id": string(),
                "user_id": uuid("the recipient"),
                "notification_type": string(enum=list(CHANNELS)),
                "template_code": string(),
                "status": string(
                    "pending until delivered or failed; failed is final unless replayed", enum=list(STATUSES)
                ),
                "priority": integer(minimum=1, maximum=10),
                "retry_count": integer("retries made (attempts minus one)", minimum=0),
                "error": string("the last error, when failed", nullable=True),
                "metadata": free_object("as sent"),
                "created_at": timestamp("accepted"),
                "updated_at": timestamp("last change"),
                "delivered_at": timestamp("delivery time", nullable=True),
                "attempts": {"type": "array", "items": ref("Attempt"), "description": "the history, oldest first"},
            },
            required=(
                "notification_id",
                "request_id",
                "user_id",
                "notification_type",
                "template_code",
                "status",
                "priority",
                "retry_count",
                "error",
                "metadata",
                "created_at",
                "updated_at",
                "delivered_at",
                "attempts",
            ),
            closed=False,
        ),
        "ProviderReceipt": obj(
            {
                "notification_id": string(minLength=1, maxLength=64),
                "status": string(enum=["delivered", "failed"]),
                "timestamp": timestamp("when the provider saw it; now when absent", nullable=True),
                "error": string("the provider's reason (bounce text)", maxLength=2000, nullable=True),
            },
            required=("notification_id", "status"),
        ),
        "DeadLetter": obj(
            {
                "notification_id": string(),
                "notification_type": string(enum=list(CHANNELS), nullable=True),
                "error": string("the notification's last error", nullable=True),
                "retry_count": integer("retries made before it failed", minimum=0),
                "failed_at": timestamp(
                    "when RabbitMQ dead-lettered it (else the notification's last change)", nullable=True
                ),
                "status": string("the notification's status now", enum=list(STATUSES), nullable=True),
                "reason": string("RabbitMQ's x-death reason: rejected, expired or maxlen", nullable=True),
                "queue": string("the queue it was dead-lettered from", nullable=True),
            },
            required=("notification_id", "notification_type", "error", "retry_count", "failed_at"),
            closed=False,
        ),
        "DeadLetterReplay": obj(
            {
                "notification_id": string(),
                "outcome": string(
                    "replayed, or already_delivered (removed without a resend)", enum=["replayed", "already_delivered"]
                ),
                "status": string("the notification's status now", enum=["pending", "delivered"]),
            },
            required=("notification_id", "outcome", "status"),
            closed=False,
        ),
        "Health": obj(
            {
                "status": string(enum=["ok", "degraded"]),
                "checks": {
                    "type": "object",
                    "description": "one entry per dependency (gateway: redis, "
                    "rabbitmq, users, templates; users and templates: postgres, redis)",
                    "additionalProperties": string(enum=["ok", "down"]),
                },
            },
            required=("status", "checks"),
            closed=False,
        ),
    }


# --- users ------------------------------------------------------------------------------------


def _preferences(*, creating: bool) -> Schema:
    default = {"default": True} if creating else {}
    nullable = {"nullable": True} if creating else {}
    return obj(
        {
            "email": boolean("e-mail notifications wanted", **default),
            "push": boolean("push notifications wanted", **default),
            "language": _language("picks the template language (falls back to en)", nullable=True),
        },
        description="Channel opt-ins and language" + ("" if creating else "; only the keys sent change."),
        **nullable,
    )


def _user_fields() -> dict[str, Schema]:
    return {
        "name": string(minLength=1, maxLength=200),
        "email": string(format="email", maxLength=320, description="stored lower-cased; unique"),
        "password": string(
            minLength=users.PASSWORD_MIN, maxLength=users.PASSWORD_MAX, format="password", writeOnly=True
        ),
        "push_token": string("the device's FCM registration token", maxLength=users.PUSH_TOKEN_MAX, nullable=True),
    }


def user_schemas() -> dict[str, Schema]:
    admin_only = " (admin token only; 403 otherwise)"
    return {
        "User": obj(
            {
                "id": uuid("user id"),
                "name": string(),
                "email": string(format="email"),
                "push_token": string(nullable=True),
                "preferences": obj(
                    {"email": boolean(), "push": boolean(), "language": string(nullable=True)}, closed=False
                ),
                "role": string(enum=list(ROLES)),
                "is_active": boolean("false once deleted (deactivated)"),
                "created_at": timestamp("registration"),
                "updated_at": timestamp("last change"),
            },
            required=(
                "id",
                "name",
                "email",
                "push_token",
                "preferences",
                "role",
                "is_active",
                "created_at",
                "updated_at",
            ),
            closed=False,
        ),
        "UserCreate": obj(
            {
                **_user_fields(),
                "preferences": _preferences(creating=True),
                "role": string("defaults to user" + admin_only, enum=list(ROLES), default="user"),
            },
            required=("name", "email", "password"),
        ),
        "UserUpdate": obj(
            {
                **_user_fields(),
                "preferences": _preferences(creating=False),
                "role": string("a new role" + admin_only, enum=list(ROLES)),
                "is_active": boolean("reactivate or deactivate" + admin_only),
            },
            minProperties=1,
            description="Only the fields sent change; at least one is required.",
        ),
        "LoginRequest": obj(
            {
                "email": string(minLength=1, maxLength=320),
                "password": string(minLength=1, maxLength=1024, format="password"),
            },
            required=("email", "password"),
        ),
        "Token": obj(
            {
                "access_token": string("an HS256 JWT with exp, iss, aud, sub, role, iat"),
                "token_type": string(enum=["bearer"]),
                "expires_in": integer("seconds until it expires", minimum=1),
            },
            required=("access_token", "token_type", "expires_in"),
            closed=False,
        ),
    }


# --- templates --------------------------------------------------------------------------------


def _template_text(*, creating: bool) -> dict[str, Schema]:
    return {
        "name": string(minLength=1, maxLength=templates.MAX_NAME),
        "description": string(minLength=0, maxLength=templates.MAX_DESCRIPTION, nullable=True),
        "subject": string(
            "Jinja2 source of the e-mail subject / push title",
            minLength=0,
            maxLength=templates.MAX_SUBJECT,
            nullable=True,
            **({"default": ""} if creating else {}),
        ),
        "content": string("Jinja2 source of the body (HTML for e-mail)", minLength=1, maxLength=templates.MAX_CONTENT),
    }


def template_schemas() -> dict[str, Schema]:
    code = string("unique per language", pattern=templates.CODE_RE.pattern, maxLength=100)
    return {
        "Template": obj(
            {
                "id": uuid("template id"),
                "code": code,
                "name": string(),
                "description": string(nullable=True),
                "subject": string(),
                "content": string(),
                "language": string(),
                "version": integer(minimum=1),
                "is_active": boolean(),
                "created_at": timestamp("first version"),
                "updated_at": timestamp("latest"),
            },
            required=(
                "id",
                "code",
                "name",
                "description",
                "subject",
                "content",
                "language",
                "version",
                "is_active",
                "created_at",
                "updated_at",
            ),
            closed=False,
        ),
        "TemplateCreate": obj(
            {
                "code": code,
                **_template_text(creating=True),
                "language": _language("the language of this template", default="en", nullable=True),
            },
            required=("code", "name", "content"),
        ),
        "TemplateUpdate": obj(
            {
                **_template_text(creating=False),
                "language": _language("which language's template to update", default="en", nullable=True),
                "is_active": boolean("an inactive template cannot be sent", nullable=True),
            },
            description="Saves a new version; the old one stays in the history. At least one of name, "
            "description, subject, content, is_active.",
        ),
        "TemplateVersion": obj(
            {
                "id": uuid("version row id"),
                "template_id": uuid("the template"),
                "version": integer(minimum=1),
                "name": string(),
                "description": string(nullable=True),
                "subject": string(),
                "content": string(),
                "created_by": uuid("the admin who saved it, null for a service token") | {"nullable": True},
                "created_at": timestamp("saved"),
            },
            required=(
                "id",
                "template_id",
                "version",
                "name",
                "description",
                "subject",
                "content",
                "created_by",
                "created_at",
            ),
            closed=False,
        ),
        "RenderRequest": obj(
            {
                "variables": free_object("the template's variables", default={}, nullable=True),
                "language": _language("falls back to en", default="en", nullable=True),
            }
        ),
        "Rendered": obj(
            {
                "subject": string(),
                "body": string("HTML, autoescaped"),
                "text": string("plain text, tags stripped"),
                "language": string("the language actually used"),
                "version": integer(minimum=1),
            },
            required=("subject", "body", "text", "language", "version"),
            closed=False,
        ),
    }


def all_schemas() -> dict[str, Schema]:
    return {**envelope_schemas(), **notification_schemas(), **user_schemas(), **template_schemas()}
