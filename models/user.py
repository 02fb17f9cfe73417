"""The USERS table, with the ``role`` that access rules read (README, "Access")."""

from __future__ import annotations

import peewee

from models.base import iso, new_id, users_db, utcnow

ROLES = ("admin", "service", "user")


class User(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=new_id)
    name = peewee.CharField(max_length=200)
    email = peewee.CharField(max_length=320, unique=True)
    password_hash = peewee.CharField(max_length=300)
    push_token = peewee.TextField(null=True)
    preferences = peewee.JSONField(default=dict)
    role = peewee.CharField(max_length=16, default="user")
    is_active = peewee.BooleanField(default=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = users_db
        table_name = "users"

    def public(self) -> dict:
        """What the API shows: never the password hash."""
        return {
            "id": str(self.id),
            "name": self.name,
            "email": self.email,
            "push_token": self.push_token,
            "preferences": self.preferences or {},
            "role": self.role,
            "is_active": self.is_active,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
