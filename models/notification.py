"""The NOTIFICATION_STATUS table, plus what the contract needs (request id, caller, priority, attempts).

``user_id`` and ``template_code`` carry no foreign key: with the design's data isolation the users
and templates may live in other databases, so the gateway checks them through the services' APIs.
"""

from __future__ import annotations

import peewee

from models.base import iso, new_id, notifications_db, utcnow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
CHANNELS = ("email", "push")


class Notification(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=new_id)
    notification_id = peewee.CharField(max_length=64, unique=True)
    request_id = peewee.CharField(max_length=128)
    caller = peewee.CharField(max_length=64)
    request_hash = peewee.CharField(max_length=64, default="")
    user_id = peewee.UUIDField(index=True)
    template_code = peewee.CharField(max_length=100)
    notification_type = peewee.CharField(max_length=8)
    status = peewee.CharField(max_length=16, default=PENDING)
    priority = peewee.SmallIntegerField(default=5)
    retry_count = peewee.IntegerField(default=0)
    error = peewee.TextField(null=True)
    metadata = peewee.JSONField(default=dict)
    attempts = peewee.JSONField(default=list)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    delivered_at = peewee.DateTimeField(null=True)

    class Meta:
        database = notifications_db
        table_name = "notification_status"
        indexes = (
            (("caller", "request_id"), True),
            (("status", "created_at"), False),
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
            "attempts": self.attempts or [],
        }
