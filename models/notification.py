"""The NOTIFICATION_STATUS table, plus the request id, caller, priority, attempts and schedule.

``user_id`` and ``template_code`` carry no foreign key: each service may keep its own database, so
the users and templates may live elsewhere, and the gateway checks them through the services' APIs.

Statuses: ``scheduled`` -> ``pending`` -> ``delivered`` | ``failed``; ``scheduled`` or ``pending`` ->
``cancelled`` | ``expired`` (README, "Scheduling, expiry, cancelling").
"""

from __future__ import annotations

import peewee

from models.base import iso, new_id, notifications_db, utcnow

SCHEDULED, PENDING, DELIVERED, FAILED = "scheduled", "pending", "delivered", "failed"
CANCELLED, EXPIRED = "cancelled", "expired"
STATUSES = (SCHEDULED, PENDING, DELIVERED, FAILED, CANCELLED, EXPIRED)
#: Statuses no automatic processing leaves: reaching one is an outcome worth telling (webhooks).
FINAL_STATUSES = (DELIVERED, FAILED, CANCELLED, EXPIRED)
#: Statuses of a notification not yet handed to the provider, which a cancel or expiry still stops.
OPEN_STATUSES = (SCHEDULED, PENDING)
CHANNELS = ("email", "push")
#: Who a notification is for: ``live`` reaches SMTP or FCM; ``test`` (a send made with an
#: ``hk_test_`` API key) runs every check, queue and status but a simulated provider
#: (README, "Test mode").
LIVE, TEST = "live", "test"
MODES = (LIVE, TEST)
#: Statuses whose ``error`` says why (a failure, a cancel, an expiry); any other status clears it.
ERROR_STATUSES = (FAILED, CANCELLED, EXPIRED)
#: History entries that are not delivery attempts, so they do not count as retries: a provider's
#: receipt, an operator's replay, a scheduled notification published, a cancel, an expiry.
RECEIPT, REPLAYED, PUBLISHED = "receipt", "replayed", "published"
NOT_ATTEMPTS = (RECEIPT, REPLAYED, PUBLISHED, CANCELLED, EXPIRED)
#: A send's priority: 1 (lowest) to 10 (highest), RabbitMQ's ``x-max-priority`` on the delivery queues.
MIN_PRIORITY, MAX_PRIORITY = 1, 10
DEFAULT_PRIORITY = 5


class Notification(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=new_id)
    notification_id = peewee.CharField(max_length=64, unique=True)
    request_id = peewee.CharField(max_length=128, index=True)
    caller = peewee.CharField(max_length=64)
    request_hash = peewee.CharField(max_length=64, default="")
    #: The accepting request's ``X-Correlation-ID``, and the template (language, version) the gateway
    #: checked: what an operator needs to follow a notification into the logs and the template
    #: history. Absent on rows written before they were recorded.
    correlation_id = peewee.CharField(max_length=128, null=True)
    template_language = peewee.CharField(max_length=16, null=True)
    template_version = peewee.IntegerField(null=True)
    user_id = peewee.UUIDField(index=True)
    template_code = peewee.CharField(max_length=100)
    notification_type = peewee.CharField(max_length=8)
    status = peewee.CharField(max_length=16, default=PENDING)
    priority = peewee.SmallIntegerField(default=DEFAULT_PRIORITY)
    retry_count = peewee.IntegerField(default=0)
    error = peewee.TextField(null=True)
    metadata = peewee.JSONField(default=dict)
    attempts = peewee.JSONField(default=list)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    delivered_at = peewee.DateTimeField(null=True)
    mode = peewee.CharField(max_length=8, default=LIVE)
    send_at = peewee.DateTimeField(null=True)
    expires_at = peewee.DateTimeField(null=True)
    #: A scheduled notification's delivery message (body and correlation id), published when due.
    payload = peewee.JSONField(null=True)

    class Meta:
        database = notifications_db
        table_name = "notification_status"
        indexes = (
            (("caller", "request_id"), True),
            (("status", "created_at"), False),
            (("status", "send_at"), False),
        )

    def public(self) -> dict:
        return {
            "notification_id": self.notification_id,
            "request_id": self.request_id,
            "user_id": str(self.user_id),
            "notification_type": self.notification_type,
            "template_code": self.template_code,
            "status": self.status,
            "priority": self.priority,
            "retry_count": self.retry_count,
            "error": self.error,
            "metadata": self.metadata or {},
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "delivered_at": iso(self.delivered_at),
            "send_at": iso(self.send_at),
            "expires_at": iso(self.expires_at),
            "attempts": self.attempts or [],
            "mode": self.mode,
        }
