"""Queries on WEBHOOKS (the subscriptions); nothing else in the code base builds one."""

from __future__ import annotations

from models.webhook import Webhook, generate_secret


def create(*, url: str, events: list[str] | None, description: str | None, created_by: str | None) -> Webhook:
    """A new subscription with a fresh signing secret. ``events`` ``None`` means every type."""
    return Webhook.create(
        url=url, events=events, description=description, secret=generate_secret(), created_by=created_by
    )


def get(webhook_id: str) -> Webhook | None:
    return Webhook.get_or_none(Webhook.id == webhook_id)


def listing(*, page: int, limit: int) -> tuple[int, list[Webhook]]:
    query = Webhook.select()
    total = query.count()
    rows = list(query.order_by(Webhook.created_at.desc(), Webhook.id).paginate(page, limit))
    return total, rows


def delete(webhook_id: str) -> bool:
    """Delete a subscription and (by the foreign key's cascade) its deliveries; False if absent."""
    return Webhook.delete().where(Webhook.id == webhook_id).execute() > 0


def active() -> list[Webhook]:
    """Every subscription that receives events (a small table, read whole by the event producer)."""
    return list(Webhook.select().where(Webhook.is_active == True).order_by(Webhook.created_at))  # noqa: E712
