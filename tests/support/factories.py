"""Rows made with defaults, so a test names only what it is about."""

from __future__ import annotations

import uuid

from models.base import utcnow
from models.notification import PENDING, Notification


def notification(**fields) -> Notification:
    """A notification row (on the bound notifications database), ``pending`` unless told otherwise."""
    now = utcnow()
    values = dict(
        notification_id=str(uuid.uuid4()),
        request_id=uuid.uuid4().hex,
        caller="test",
        user_id=uuid.uuid4(),
        template_code="welcome",
        notification_type="email",
        status=PENDING,
        created_at=now,
        updated_at=now,
    )
    return Notification.create(**{**values, **fields})
