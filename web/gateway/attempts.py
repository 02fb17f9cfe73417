"""One send in progress, and what it becomes once accepted: its delivery message's body and its
row. Kept apart from the send pipeline, which decides whether a send is accepted; this module
only says what an accepted one is made of (README, "What a send does")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from models.base import iso
from web.common.auth import Caller
from web.gateway.schemas import SendRequest


@dataclass(frozen=True)
class Attempt:
    """One send in progress: who asked, what, and the identity it was given."""

    caller: Caller
    request: SendRequest
    user_id: str  # the request's, in its canonical form
    digest: str
    correlation_id: str
    notification_id: str
    created_at: dt.datetime
    #: ``scheduled`` when due later (recorded only, published by the due-time loop), else ``pending``.
    status: str


def delivery_body(attempt: Attempt, user: dict, template: dict) -> dict:
    """The delivery message's body: the design's notification body plus the template snapshot the
    gateway checked, so a worker needs neither the user nor the template service to send."""
    req = attempt.request
    return {
        "notification_id": attempt.notification_id,
        "notification_type": req.notification_type,
        "user_id": attempt.user_id,
        "user_email": user["email"],
        "user_push_token": user.get("push_token"),
        "template_code": req.template_code,
        "variables": req.variables,
        "request_id": req.request_id,
        "priority": req.priority,
        "metadata": req.metadata,
        "retry_count": 0,
        "created_at": iso(attempt.created_at),
        "template": {key: template.get(key) for key in ("language", "version", "subject", "content")},
        "mode": attempt.caller.mode,
        "expires_at": iso(req.expires_at),
    }


def notification_row(attempt: Attempt, template: dict) -> dict:
    """The columns of the notification's row, as ``models.dao.notifications.create_many`` takes them."""
    req, now = attempt.request, attempt.created_at
    return dict(
        notification_id=attempt.notification_id,
        request_id=req.request_id,
        caller=attempt.caller.sub,
        request_hash=attempt.digest,
        user_id=attempt.user_id,
        template_code=req.template_code,
        notification_type=req.notification_type,
        status=attempt.status,
        priority=req.priority,
        metadata=req.metadata,
        mode=attempt.caller.mode,
        correlation_id=attempt.correlation_id,
        template_language=template.get("language"),
        template_version=template.get("version"),
        send_at=_naive(req.send_at),
        expires_at=_naive(req.expires_at),
        created_at=now,
        updated_at=now,
    )


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    """UTC without its zone, as the timestamp columns store it."""
    return None if value is None else value.astimezone(dt.UTC).replace(tzinfo=None)
