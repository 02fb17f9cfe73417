"""What the API-key and webhook operations take and answer, declared once (README, "API keys" and
"Webhooks")."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from msgspec import Meta, Struct

from models.api_key import NAME_MAX
from models.notification import MODES
from models.webhook import DESCRIPTION_MAX, EVENT_TYPES, URL_MAX
from web.common.fields import Timestamp, line, text

EventType = Literal[EVENT_TYPES]


class ApiKeyCreate(Struct, forbid_unknown_fields=True):
    name: line(1, NAME_MAX, description="What the key is for.", examples=("billing service",))
    mode: Annotated[Literal[MODES], Meta(description="test: sends never reach a provider.")] = "live"
    expires_at: Annotated[dt.datetime, Meta(tz=True, description="When the key stops working.")] | None = None


class ApiKey(Struct):
    id: uuid.UUID
    name: str
    mode: Literal[MODES]
    prefix: Annotated[str, Meta(description="The key's first 12 characters, to recognise it by.")]
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Annotated[Timestamp | None, Meta(description="Kept to the minute.")]
    revoked_at: Timestamp | None


class ApiKeyCreated(ApiKey):
    key: Annotated[str, Meta(description="The key: shown in this answer only, stored as a hash.")]


class ApiKeyPath(Struct):
    key_id: Annotated[uuid.UUID, Meta(description="The key's id; a malformed one answers 404.")]


class WebhookCreate(Struct, forbid_unknown_fields=True):
    url: text(1, URL_MAX, description="http or https; a private, loopback or link-local address is refused.")
    events: Annotated[list[EventType], Meta(min_length=1, description="Which outcomes; all when absent.")] | None = None
    description: text(0, DESCRIPTION_MAX, description="What the receiver is.") | None = None


class Webhook(Struct):
    id: uuid.UUID
    url: str
    events: list[EventType]
    description: str | None
    is_active: bool
    created_at: Timestamp


class WebhookCreated(Webhook):
    secret: Annotated[str, Meta(description="Signs every delivery: shown in this answer only.")]


class WebhookPath(Struct):
    webhook_id: Annotated[uuid.UUID, Meta(description="The webhook's id; a malformed one answers 404.")]


class Delivery(Struct):
    event_id: uuid.UUID
    event_type: EventType
    notification_id: str
    attempts: Annotated[int, Meta(ge=0)]
    last_status_code: int | None
    last_error: str | None
    state: Literal["pending", "succeeded", "failed"]
    created_at: Timestamp
    updated_at: Timestamp
