"""The API_KEYS table, and what a key looks like (README, "API keys").

A key is ``hk_live_`` or ``hk_test_`` followed by 43 url-safe characters (32 random bytes). Only the
SHA-256 of the key is stored. A plain, unsalted hash is enough here, and it is the right choice:

- A salt or a slow hash (scrypt, as for passwords) defends a *guessable* secret against guessing.
  These keys carry 256 random bits, so no table or brute force reaches one from its hash.
- A deterministic hash lets a request find its key with one indexed lookup. A salted or slow hash
  would cost a full scan, or tens of milliseconds of CPU, on every request.
- A keyed hash (HMAC with a server secret) would add nothing for keys this strong. It would also
  tie every stored key to one more secret to keep and rotate.

The first 12 characters (``prefix``, e.g. ``hk_live_Ab3d``) are kept in clear, so a person can tell
keys apart in a list. They give away 24 of the 256 random bits.
"""

from __future__ import annotations

import hashlib
import secrets

import peewee

from models.base import iso, new_id, notifications_db, utcnow
from models.notification import LIVE, TEST

#: The string every key starts with, per mode. ``logs.SECRET_TOKEN`` masks both in every log line.
KEY_PREFIXES = {LIVE: "hk_live_", TEST: "hk_test_"}
#: Random bytes per key: 43 url-safe characters.
KEY_BYTES = 32
#: Characters of a key shown in lists.
PREFIX_LENGTH = 12
#: A key's name: 1 to this many characters.
NAME_MAX = 100
#: The caller identity of a key, ``apikey:<id>``: its ``sub``, and its idempotency scope.
SUBJECT_PREFIX = "apikey:"


def generate(mode: str) -> str:
    """A new key for ``mode`` (``live`` or ``test``).

    Raises:
        KeyError: ``mode`` is not a mode.
    """
    return KEY_PREFIXES[mode] + secrets.token_urlsafe(KEY_BYTES)


def digest(key: str) -> str:
    """The stored form of a key: hex SHA-256 (see the module doc for why a plain hash)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(bearer: str) -> bool:
    """Whether a bearer string is meant as an API key (not a JWT); says nothing of its validity."""
    return bearer.startswith(tuple(KEY_PREFIXES.values()))


def subject(key_id: str) -> str:
    return f"{SUBJECT_PREFIX}{key_id}"


class ApiKey(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=new_id)
    name = peewee.CharField(max_length=NAME_MAX)
    mode = peewee.CharField(max_length=8, default=LIVE)
    prefix = peewee.CharField(max_length=PREFIX_LENGTH)
    key_hash = peewee.CharField(max_length=64, unique=True)
    created_by = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField(null=True)
    last_used_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)

    class Meta:
        database = notifications_db
        table_name = "api_keys"
        indexes = ((("created_at",), False),)

    def public(self) -> dict:
        """The key object of the API; never the key itself (only the creation answer adds it)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "mode": self.mode,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
        }
