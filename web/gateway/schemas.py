"""What the gateway's own operations take and answer, declared once: msgspec checks requests against
these Structs and the OpenAPI document is written from them (ARCHITECTURE.md, "Where each policy
lives").

``null`` for an optional field means the same as leaving it out (README, "Using it").
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from models.notification import CHANNELS, DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, MODES, STATUSES
from web.common.decoding import invalid
from web.common.fields import (
    MAX_OBJECT_BYTES,
    PageQuery,
    Timestamp,
    fill_defaults,
    json_object,
    line,
    oversized,
    text,
)

MAX_LINK = 2048
#: How far ahead ``send_at`` may be, and how far ahead it must be to make a send scheduled.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=30)
SCHEDULE_AFTER = dt.timedelta(seconds=1)
#: Receipt times Herald takes: years 1900 to 2999 (any date-time further out is a provider's error).
RECEIPT_YEARS = r"^(19|2[0-9])[0-9][0-9]-"

Channel = Annotated[Literal[CHANNELS], Meta(description="The channel.")]
#: ``variables.link`` as the document states it (``SendRequest.__post_init__`` checks it).
LINK = {
    "link": {
        "anyOf": [
            {"type": "string", "pattern": r"^https?://[^\x00]*$(?!\n)", "maxLength": MAX_LINK},
            {"type": "null"},
        ],
        "description": "An http(s) URL.",
    }
}
NotificationId = line(1, 64, description="The notification's id.")


class SendRequest(Struct, forbid_unknown_fields=True):
    """A notification to send: the channel, the recipient, the template and its variables."""

    defaults: ClassVar[Mapping[str, Any]] = {"variables": {}, "priority": DEFAULT_PRIORITY, "metadata": {}}

    notification_type: Channel
    user_id: Annotated[uuid.UUID, Meta(description="The recipient.")]
    template_code: line(1, 100, description="The template to render.", examples=("welcome",))
    request_id: line(
        1,
        128,
        description="Your idempotency key: a repeat from the same caller within 24 h with the same body "
        "(compared after defaults) gets the first answer with 200; with another body, 409.",
        examples=("signup-42",),
    )
    variables: (
        json_object(
            "The template's variables: name, link (an http(s) URL), meta, image (push) and any other the "
            "template uses; at most 64 KiB as JSON.",
            LINK,
        )
        | None
    ) = None
    priority: Annotated[int, Meta(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="10 is the highest.")] | None = None
    metadata: json_object("Kept with the notification; at most 64 KiB as JSON.") | None = None
    send_at: (
        Annotated[
            dt.datetime,
            Meta(
                tz=True,
                description="Send it then, not now (ISO 8601 with an offset, at most 30 days ahead); more than a "
                "second ahead makes it scheduled.",
            ),
        ]
        | None
    ) = None
    expires_at: (
        Annotated[
            dt.datetime,
            Meta(
                tz=True,
                description="Never send it after this (ISO 8601 with an offset): not handed to the provider by "
                "then, it ends expired. Must be after now and after send_at.",
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        fill_defaults(self)
        now = dt.datetime.now(dt.UTC)
        if self.send_at is not None:
            if self.send_at > now + MAX_SCHEDULE_AHEAD:
                raise invalid("send_at", "must be at most 30 days ahead")
            self.send_at = self.send_at.astimezone(dt.UTC)
        if self.expires_at is not None:
            self.expires_at = self.expires_at.astimezone(dt.UTC)
            if self.expires_at <= now or (self.send_at is not None and self.expires_at <= self.send_at):
                raise invalid("expires_at", "must be after now and after send_at")
        for name in ("variables", "metadata"):
            if oversized(getattr(self, name)):
                raise invalid(name, f"must be at most {MAX_OBJECT_BYTES} bytes as JSON")
        link = self.variables.get("link")
        if link is not None and not (
            isinstance(link, str) and link.startswith(("http://", "https://")) and len(link) <= MAX_LINK
        ):
            raise invalid("variables.link", f"must be an http(s) URL of at most {MAX_LINK} characters")

    def canonical(self) -> dict[str, Any]:
        """The request as the idempotency hash sees it: every field, defaults applied, the user id
        in its canonical form (the same dict as before the Structs, so stored keys still match). A
        field added later belongs here only when it is given, for the same reason."""
        return {
            "notification_type": self.notification_type,
            "user_id": str(self.user_id),
            "template_code": self.template_code,
            "variables": self.variables,
            "request_id": self.request_id,
            "priority": self.priority,
            "metadata": self.metadata,
            **{
                name: _iso(getattr(self, name)) for name in ("send_at", "expires_at") if getattr(self, name) is not None
            },
        }

    @property
    def scheduled(self) -> bool:
        """Due more than :data:`SCHEDULE_AFTER` from now: recorded ``scheduled``, published when due."""
        return self.send_at is not None and self.send_at > dt.datetime.now(dt.UTC) + SCHEDULE_AFTER


def _iso(value: dt.datetime) -> str:
    """UTC with an explicit Z, as every timestamp Herald answers with."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class Accepted(Struct):
    notification_id: Annotated[str, Meta(description="The new notification's id.")]
    request_id: str
    status: Annotated[Literal["pending", "scheduled"], Meta(description="scheduled when send_at is ahead.")]
    created_at: Annotated[Timestamp, Meta(description="When it was accepted.")]


class Attempt(Struct):
    time: Timestamp
    outcome: Annotated[str, Meta(description="delivered, a failure kind, receipt (a provider's report) or replayed.")]
    error: str | None


class Notification(Struct):
    notification_id: str
    request_id: str
    user_id: uuid.UUID
    notification_type: Literal[CHANNELS]
    template_code: str
    status: Annotated[
        Literal[STATUSES],
        Meta(description="scheduled -> pending -> delivered | failed; scheduled or pending -> cancelled | expired."),
    ]
    priority: Annotated[int, Meta(ge=MIN_PRIORITY, le=MAX_PRIORITY)]
    retry_count: Annotated[int, Meta(ge=0, description="Retries made: attempts minus one.")]
    error: str | None
    metadata: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp
    delivered_at: Timestamp | None
    send_at: Timestamp | None
    expires_at: Timestamp | None
    mode: Annotated[Literal[MODES], Meta(description="test: sent with an hk_test_ key, never reaches a provider.")]
    attempts: Annotated[list[Attempt], Meta(description="The history, oldest first.")]


class NotificationQuery(PageQuery, forbid_unknown_fields=False):
    user_id: Annotated[uuid.UUID, Meta(description="Only this user's; a user token may give only its own.")] | (
        UnsetType
    ) = UNSET
    status: Annotated[Literal[STATUSES], Meta(description="Only this status.")] | UnsetType = UNSET
    notification_type: Annotated[Literal[CHANNELS], Meta(description="Only this channel.")] | UnsetType = UNSET


class NotificationPath(Struct):
    notification_id: NotificationId


class ChannelPath(Struct):
    channel: Annotated[Literal[CHANNELS], Meta(description="The provider's channel.")]


class Receipt(Struct, forbid_unknown_fields=True):
    """A provider's delivery report or bounce for one notification of the path's channel."""

    notification_id: NotificationId
    status: Literal["delivered", "failed"]
    timestamp: (
        Annotated[
            dt.datetime,
            Meta(
                tz=True,
                description="When the provider saw it, RFC 3339 with an offset, years 1900 to 2999; now when absent.",
                extra_json_schema={"pattern": RECEIPT_YEARS},
            ),
        ]
        | None
    ) = None
    error: text(1, 2000, description="The provider's reason (bounce text).") | None = None

    def __post_init__(self) -> None:
        if self.timestamp is not None:
            if not 1900 <= self.timestamp.year <= 2999:
                raise invalid("timestamp", "must be in the years 1900 to 2999")
            self.timestamp = self.timestamp.astimezone(dt.UTC).replace(tzinfo=None)


class DeadLetter(Struct):
    notification_id: str
    notification_type: Literal[CHANNELS] | None
    error: Annotated[str | None, Meta(description="The notification's last error.")]
    retry_count: Annotated[int, Meta(ge=0)]
    failed_at: Annotated[Timestamp | None, Meta(description="When RabbitMQ dead-lettered it (else the last change).")]
    status: Annotated[Literal[STATUSES] | None, Meta(description="The notification's status now.")]
    reason: Annotated[str | None, Meta(description="RabbitMQ's x-death reason: rejected, expired or maxlen.")]
    queue: Annotated[str | None, Meta(description="The queue it was dead-lettered from.")]


class DeadLetterReplay(Struct):
    notification_id: str
    outcome: Annotated[
        Literal["replayed", "already_delivered"], Meta(description="already_delivered: removed without a resend.")
    ]
    status: Literal["pending", "delivered"]


#: Most sends one batch may carry.
MAX_BATCH = 1000


class BatchRequest(Struct, forbid_unknown_fields=True):
    """Up to 1,000 sends; each is judged exactly as if sent alone, so a bad item is that item's 400
    and only a malformed envelope refuses the batch."""

    notifications: Annotated[
        list[Raw],
        Meta(
            min_length=1,
            max_length=MAX_BATCH,
            description="Send requests, each as POST /api/v1/notifications/ takes it (SendRequest); an item "
            "that is not one is that item's 400, not the batch's.",
        ),
    ]


class BatchItem(Struct):
    index: Annotated[int, Meta(ge=0, description="The item's position in the request.")]
    status_code: Annotated[int, Meta(description="202, 200 for a replay, or the error's HTTP status.")]
    data: Accepted | None
    error: Annotated[str | None, Meta(description="The error code when the item was refused.")]
    message: str


class BatchResult(Struct):
    results: Annotated[list[BatchItem], Meta(description="One per item, in request order.")]
