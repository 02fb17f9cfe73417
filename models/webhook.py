"""WEBHOOKS (subscriptions) and WEBHOOK_DELIVERIES, and the event vocabulary (README, "Webhooks").

An event is a notification reaching a final status, ``notification.<status>``. The types follow
:data:`models.notification.FINAL_STATUSES`, so a status added there (``cancelled``, ``expired``) is
an event type with nothing else to change. One event reaches each subscription that wants it as
one delivery row. The row keeps the event's exact body, so every attempt sends the same bytes
under the same event id.

A subscription's ``secret`` signs its deliveries and is shown only in the creation answer. Herald
must read it to sign, so it is stored as it is, not hashed. Deleting a subscription deletes its
deliveries.
"""

from __future__ import annotations

import secrets

import peewee

from models.base import iso, new_id, notifications_db, utcnow
from models.notification import FINAL_STATUSES

EVENT_PREFIX = "notification."
#: Every event type a subscription may ask for.
EVENT_TYPES = tuple(EVENT_PREFIX + status for status in FINAL_STATUSES)
#: Start of every signing secret; ``logs.SECRET_TOKEN`` masks it in every log line.
SECRET_PREFIX = "whsec_"
#: The longest URL and description accepted.
URL_MAX = 2048
DESCRIPTION_MAX = 500

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
DELIVERY_STATES = (PENDING, SUCCEEDED, FAILED)
#: How much of a receiver's answer or an error is kept per attempt.
ERROR_MAX = 500


def event_type(status: str) -> str:
    return EVENT_PREFIX + status


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class Webhook(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=new_id)
    url = peewee.TextField()
    #: The event types wanted; ``None``: all of them, including types added later.
    events = peewee.JSONField(null=True)
    description = peewee.TextField(null=True)
    secret = peewee.CharField(max_length=64)
    is_active = peewee.BooleanField(default=True)
    created_by = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = notifications_db
        table_name = "webhooks"

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events

    def public(self) -> dict:
        """The webhook object of the API; never the secret (only the creation answer adds it)."""
        return {
            "id": str(self.id),
            "url": self.url,
            "events": list(EVENT_TYPES) if self.events is None else list(self.events),
            "description": self.description,
            "is_active": self.is_active,
            "created_at": iso(self.created_at),
        }


class WebhookDelivery(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=new_id)
    event_id = peewee.UUIDField()
    webhook = peewee.ForeignKeyField(Webhook, on_delete="CASCADE", column_name="webhook_id", backref="deliveries")
    event_type = peewee.CharField(max_length=64)
    notification_id = peewee.CharField(max_length=64)
    #: The exact JSON body sent on every attempt.
    payload = peewee.TextField()
    attempts = peewee.IntegerField(default=0)
    last_status_code = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    state = peewee.CharField(max_length=16, default=PENDING)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = notifications_db
        table_name = "webhook_deliveries"
        indexes = (
            (("event_id", "webhook"), True),
            (("webhook", "created_at"), False),
            (("state", "updated_at"), False),
        )

    def public(self) -> dict:
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "notification_id": self.notification_id,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "state": self.state,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
