"""Queries on API_KEYS; nothing else in the code base builds an API-key query.

Keys are found by the hash of the key (:func:`models.api_key.digest`), never by the key itself,
which exists only in :func:`create`'s answer.
"""

from __future__ import annotations

import datetime as dt

from models.api_key import PREFIX_LENGTH, ApiKey, digest, generate
from models.base import utcnow

#: ``last_used_at`` is kept to the minute: a use within this long of the stored one is not written.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def create(*, name: str, mode: str, expires_at: dt.datetime | None, created_by: str | None) -> tuple[ApiKey, str]:
    """A new key: its row, and the key itself (to be shown once, then forgotten).

    Raises:
        KeyError: ``mode`` is not ``live`` or ``test``.
    """
    key = generate(mode)
    row = ApiKey.create(
        name=name,
        mode=mode,
        prefix=key[:PREFIX_LENGTH],
        key_hash=digest(key),
        created_by=created_by,
        expires_at=expires_at,
    )
    return row, key


def get(key_id: str) -> ApiKey | None:
    return ApiKey.get_or_none(ApiKey.id == key_id)


def by_hash(key_hash: str) -> ApiKey | None:
    return ApiKey.get_or_none(ApiKey.key_hash == key_hash)


def listing(*, page: int, limit: int) -> tuple[int, list[ApiKey]]:
    """Newest first, revoked ones included (with ``revoked_at``)."""
    query = ApiKey.select()
    total = query.count()
    rows = list(query.order_by(ApiKey.created_at.desc(), ApiKey.id).paginate(page, limit))
    return total, rows


def revoke(key_id: str, *, at: dt.datetime | None = None) -> ApiKey | None:
    """Revoke a key (a second revocation keeps the first time); ``None`` if there is no such key."""
    ApiKey.update(revoked_at=at or utcnow()).where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null()).execute()
    return get(key_id)


def touch(key_id: str, at: dt.datetime) -> int:
    """Set ``last_used_at`` to ``at`` unless it is already within a minute of it; rows changed.

    The condition makes concurrent gateway processes write a key's row at most about once a minute
    between them, whatever each one's own bookkeeping.
    """
    stale = ApiKey.last_used_at.is_null() | (ApiKey.last_used_at <= at - LAST_USED_RESOLUTION)
    return ApiKey.update(last_used_at=at).where((ApiKey.id == key_id) & stale).execute()
