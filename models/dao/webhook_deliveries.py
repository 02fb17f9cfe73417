"""Queries on WEBHOOK_DELIVERIES; nothing else in the code base builds one.

A delivery is ``pending`` until an attempt gets a 2xx (``succeeded``) or the retries run out
(``failed``). Only a ``pending`` row changes: a late or duplicate attempt cannot reopen an outcome.
"""

from __future__ import annotations

import datetime as dt

from models.base import new_id, utcnow
from models.webhook import ERROR_MAX, FAILED, PENDING, SUCCEEDED, Webhook, WebhookDelivery


def create_many(rows: list[dict]) -> list[WebhookDelivery]:
    """Insert deliveries (``event_id``, ``webhook``, ``event_type``, ``notification_id``,
    ``payload``); returns them with their ids."""
    now = utcnow()
    made = [WebhookDelivery(id=new_id(), created_at=now, updated_at=now, **row) for row in rows]
    if made:
        WebhookDelivery.bulk_create(made)
    return made


def get(delivery_id: str) -> WebhookDelivery | None:
    """The delivery with its subscription (``row.webhook``), in one query; ``None`` when the row is
    gone (its subscription was deleted)."""
    query = WebhookDelivery.select(WebhookDelivery, Webhook).join(Webhook).where(WebhookDelivery.id == delivery_id)
    return query.first()


def listing(webhook_id: str, *, page: int, limit: int) -> tuple[int, list[WebhookDelivery]]:
    """One page of a subscription's deliveries, newest first, and their total."""
    query = WebhookDelivery.select().where(WebhookDelivery.webhook == webhook_id)
    total = query.count()
    rows = list(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).paginate(page, limit))
    return total, rows


def record_attempt(
    delivery_id: str, *, status_code: int | None, error: str | None, succeeded: bool, at: dt.datetime | None = None
) -> bool:
    """Count one attempt and keep its answer; ``succeeded`` ends the delivery. False when the row is
    gone or no longer ``pending``."""
    changes = {
        WebhookDelivery.attempts: WebhookDelivery.attempts + 1,
        WebhookDelivery.last_status_code: status_code,
        WebhookDelivery.last_error: _clip(error),
        WebhookDelivery.updated_at: at or utcnow(),
    }
    if succeeded:
        changes[WebhookDelivery.state] = SUCCEEDED
    return _pending(delivery_id, changes)


def mark_failed(delivery_id: str, *, error: str | None = None, at: dt.datetime | None = None) -> bool:
    """End a delivery as ``failed``; ``error`` replaces the last attempt's when given."""
    changes = {WebhookDelivery.state: FAILED, WebhookDelivery.updated_at: at or utcnow()}
    if error is not None:
        changes[WebhookDelivery.last_error] = _clip(error)
    return _pending(delivery_id, changes)


def stale_pending(cutoff: dt.datetime, *, limit: int) -> list[WebhookDelivery]:
    """``pending`` deliveries untouched since ``cutoff``, oldest first: their message was lost
    (never published, or its worker died) and the maintenance sweep publishes them again."""
    query = WebhookDelivery.select().where((WebhookDelivery.state == PENDING) & (WebhookDelivery.updated_at < cutoff))
    return list(query.order_by(WebhookDelivery.updated_at).limit(limit))


def touch(delivery_ids: list, at: dt.datetime | None = None) -> int:
    """Mark deliveries as just published, so the sweep leaves them alone for a while."""
    if not delivery_ids:
        return 0
    query = WebhookDelivery.update(updated_at=at or utcnow()).where(
        WebhookDelivery.id.in_(delivery_ids) & (WebhookDelivery.state == PENDING)
    )
    return query.execute()


def _pending(delivery_id: str, changes: dict) -> bool:
    query = WebhookDelivery.update(changes).where(
        (WebhookDelivery.id == delivery_id) & (WebhookDelivery.state == PENDING)
    )
    return query.execute() > 0


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:ERROR_MAX]
