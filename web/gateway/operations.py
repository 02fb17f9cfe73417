"""The gateway's own operations: sends and their status, provider receipts, dead letters (registered
by :mod:`web.gateway.app`; the whole API's document is assembled in :mod:`web.gateway.reference`)."""

from __future__ import annotations

from messaging.dead_letters import MAX_SCAN
from web.common.api import Operation
from web.common.fields import PageQuery
from web.gateway import batch, dead_letters, handlers
from web.gateway.schemas import (
    Accepted,
    BatchRequest,
    BatchResult,
    ChannelPath,
    DeadLetter,
    DeadLetterReplay,
    Notification,
    NotificationPath,
    NotificationQuery,
    Receipt,
    SendRequest,
)

TAGS = [
    {"name": "notifications", "description": "Send a notification and follow its delivery."},
    {"name": "provider receipts", "description": "Delivery reports and bounces from the providers."},
    {"name": "dead letters", "description": "Notifications parked in failed.queue, and their replay (admin)."},
]
NOT_FOUND = "notification not found"
BY_NOTIFICATION = {"notification_id": "$response.body#/data/notification_id"}

WELCOME_ADA = {
    "notification_type": "email",
    "user_id": "3f2b8c1e-6a4d-4e2f-9b7a-1c2d3e4f5a6b",
    "template_code": "welcome",
    "variables": {"name": "Ada", "link": "https://example.com/confirm?t=abc123"},
    "request_id": "signup-42",
    "priority": 8,
    "metadata": {"campaign": "spring"},
}

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/notifications/",
        "sendNotification",
        "Send a notification",
        handlers.send_notification,
        tags=("notifications",),
        description="Checks in this order: token (401), body (400), idempotency (a replay: 200; 409), user and "
        "template (404), the user's preference for the channel (400 PREFERENCE_DISABLED), a push to a user without "
        "a push token (400), the template rendering with these variables (400), rate limit (429), publish (503). "
        "202 only after the broker confirmed a persistent publish.",
        body=SendRequest,
        response=Accepted,
        status=202,
        also=(200,),
        errors=(403, 404, 409, 429),
        notes={
            200: "A repeat of an accepted request (same caller, request_id and body within 24 h): its first answer.",
            400: "A field is invalid (the message names it); or PREFERENCE_DISABLED: the user turned this channel "
            "off; or VALIDATION_ERROR for a push to a user without a push token, or variables the template cannot "
            "render (the message names the variable).",
            403: "A user token sending to another user.",
            404: "No such user (or an inactive one), or no such template (or an inactive one).",
            409: "IDEMPOTENCY_CONFLICT: the request_id was used by this caller with a different body.",
            429: "RATE_LIMITED: more than RATE_LIMIT_PER_HOUR accepted sends to this user on this channel in an hour.",
            503: "The broker did not confirm the publish, a store is unavailable, or the same request is still being "
            "processed (retry after Retry-After for its answer). Nothing is left half-recorded.",
        },
        response_headers={200: ("Idempotent-Replayed",)},
        message="notification accepted",
        links={
            "GetNotification": {"operationId": "getNotification", "parameters": BY_NOTIFICATION},
            "RecordReceipt": {
                "operationId": "recordProviderReceipt",
                "parameters": {"channel": "$request.body#/notification_type"},
                "requestBody": {"notification_id": "$response.body#/data/notification_id"},
            },
        },
        examples={"welcome": WELCOME_ADA},
    ),
    Operation(
        "POST",
        "/api/v1/notifications/batch",
        "sendNotificationBatch",
        "Send up to 1,000 notifications at once",
        batch.send_batch,
        tags=("notifications",),
        description="Each item is judged exactly as if it had been sent alone (its own checks, idempotency and rate "
        "limit); the results come in request order, each with the status code, data or error it would have had "
        "alone. Only a malformed envelope (no list, no item, more than 1,000 items, a body over the size limit) "
        "refuses the whole batch.",
        body=BatchRequest,
        response=BatchResult,
        message="batch judged",
        examples={"two": {"notifications": [WELCOME_ADA, {**WELCOME_ADA, "request_id": "signup-43"}]}},
    ),
    Operation(
        "POST",
        "/api/v1/notifications/{notification_id}/cancel",
        "cancelNotification",
        "Cancel a notification not yet handed to the provider",
        handlers.cancel_notification,
        tags=("notifications",),
        description="While it is scheduled or pending: 200 with the notification, now cancelled; it is never sent. "
        "Anyone who may read it may cancel it.",
        path_params=NotificationPath,
        response=Notification,
        errors=(409,),
        notes={
            409: "CONFLICT: already delivered, failed, cancelled or expired, or being handed to the provider at "
            "this moment."
        },
        not_found=NOT_FOUND,
        message="notification cancelled",
    ),
    Operation(
        "GET",
        "/api/v1/notifications/",
        "listNotifications",
        "List notifications, newest first",
        handlers.list_notifications,
        tags=("notifications",),
        description="Every filter is optional; a user token sees only its own notifications.",
        query=NotificationQuery,
        response=list[Notification],
        paginated=True,
        errors=(403,),
        notes={403: "A user token asked for another user's notifications."},
    ),
    Operation(
        "GET",
        "/api/v1/notifications/{notification_id:(?!batch/?$)[^/]+}",
        "getNotification",
        "A notification's status, attempts and timestamps",
        handlers.get_notification,
        tags=("notifications",),
        description="A user token reads only its own; another user's answers 404, as a missing one does.",
        path_params=NotificationPath,
        response=Notification,
        not_found=NOT_FOUND,
    ),
    Operation(
        "POST",
        "/api/v1/{channel:email|push}/status/",
        "recordProviderReceipt",
        "Record a provider's receipt or bounce (admin and service tokens)",
        handlers.provider_receipt,
        tags=("provider receipts",),
        description="Sets the notification's status and adds the receipt to its attempts.",
        path_params=ChannelPath,
        body=Receipt,
        response=Notification,
        notes={404: "No notification of this channel with that id."},
        access="privileged",
        message="receipt recorded",
        examples={"bounce": {"notification_id": "<id>", "status": "failed", "error": "550 mailbox unavailable"}},
    ),
    Operation(
        "GET",
        "/api/v1/dead-letters/",
        "listDeadLetters",
        "List the dead letters in failed.queue, oldest first (admin)",
        dead_letters.list_dead_letters,
        tags=("dead letters",),
        description="Read from the head of failed.queue without removing anything: the messages are taken and "
        f"handed straight back, so they are marked redelivered. Only the first {MAX_SCAN} are looked at; later "
        "pages are empty, and meta.total is the queue's depth.",
        query=PageQuery,
        response=list[DeadLetter],
        paginated=True,
        access="admin",
    ),
    Operation(
        "POST",
        "/api/v1/dead-letters/{notification_id}/replay",
        "replayDeadLetter",
        "Replay a dead letter (admin)",
        dead_letters.replay_dead_letter,
        tags=("dead letters",),
        description="The notification goes back to pending and its message back onto its queue with a fresh retry "
        "budget (same notification_id and request_id); only after the broker confirmed it is the dead letter "
        "removed. A dead letter of an already delivered notification is removed without a resend.",
        path_params=NotificationPath,
        response=DeadLetterReplay,
        errors=(409,),
        notes={409: "CONFLICT: the dead letter has no notification record or no channel; it stays."},
        access="admin",
        not_found="no dead letter with that notification id",
    ),
]
