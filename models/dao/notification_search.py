"""The notification listings: the API's (by user, status, type) and the operator console's search,
newest first; the queries that change rows are in :mod:`models.dao.notifications`."""

from __future__ import annotations

import contextlib
import uuid

from models.notification import Notification


def listing(
    *, user_id: str | None, status: str | None, notification_type: str | None, page: int, limit: int
) -> tuple[int, list[Notification]]:
    return search(user_id=user_id, status=status, notification_type=notification_type, page=page, limit=limit)


def search(
    *,
    any_id: str | None = None,
    user_id: str | None = None,
    status: str | None = None,
    notification_type: str | None = None,
    page: int,
    limit: int,
) -> tuple[int, list[Notification]]:
    """The operator's search: ``any_id`` matches a notification id or a request id exactly, and a
    user id too when it is a UUID (each of the three is indexed); the rest as :func:`listing`."""
    query = Notification.select()
    if any_id:
        match = (Notification.notification_id == any_id) | (Notification.request_id == any_id)
        with contextlib.suppress(ValueError):
            match |= Notification.user_id == uuid.UUID(any_id)
        query = query.where(match)
    if user_id:
        query = query.where(Notification.user_id == user_id)
    if status:
        query = query.where(Notification.status == status)
    if notification_type:
        query = query.where(Notification.notification_type == notification_type)
    total = query.count()
    rows = list(query.order_by(Notification.created_at.desc(), Notification.id).paginate(page, limit))
    return total, rows
