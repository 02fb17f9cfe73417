"""Queries on USERS; nothing else in the code base builds a user query.

Web handlers run these inside :func:`web.common.app.in_db` (a thread with a transaction), so a
read-modify-write here is one transaction; the row is locked on PostgreSQL so two concurrent
PATCHes merging preferences cannot lose each other's change.
"""

from __future__ import annotations

from typing import Any

import peewee

from models.base import utcnow
from models.user import User


class EmailTaken(Exception):
    """The unique index on ``users.email`` refused the row: the address is already registered."""


def create(**fields: Any) -> User:
    try:
        return User.create(**fields)
    except peewee.IntegrityError:
        raise EmailTaken(fields.get("email")) from None


def get(user_id: str) -> User | None:
    return User.get_or_none(User.id == user_id)


def get_by_email(email: str) -> User | None:
    """Emails are stored lower-cased, so the caller lower-cases too and the unique index serves."""
    return User.get_or_none(User.email == email)


def _contains(field: peewee.Field, text: str) -> peewee.Expression:
    """``field`` contains ``text`` in any case, ``%`` and ``_`` in it taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return peewee.Expression(field, peewee.OP.ILIKE, peewee.NodeList((f"%{escaped}%", peewee.SQL("ESCAPE '\\'"))))


def listing(*, page: int, limit: int, email: str | None = None, search: str | None = None) -> tuple[int, list[User]]:
    """A page of users, oldest first: only the one with ``email`` (exact, lower-cased) when given,
    and only those whose e-mail or name contains ``search`` (any case) when given."""
    query = User.select()
    if email:
        query = query.where(User.email == email.lower())
    if search:
        query = query.where(_contains(User.email, search) | _contains(User.name, search))
    total = query.count()
    rows = list(query.order_by(User.created_at, User.id).paginate(page, limit))
    return total, rows


def _locked(user_id: str) -> User | None:
    query = User.select().where(User.id == user_id)
    if isinstance(User._meta.database.obj, peewee.PostgresqlDatabase):
        query = query.for_update()
    return query.first()


def update(user_id: str, changes: dict[str, Any], *, preferences: dict[str, Any] | None = None) -> User | None:
    """Apply ``changes`` and merge ``preferences`` (a ``None`` value drops that key); ``None`` if absent.

    Raises :class:`EmailTaken` when the new e-mail belongs to someone else.
    """
    row = _locked(user_id)
    if row is None:
        return None
    for name, value in changes.items():
        setattr(row, name, value)
    if preferences:
        merged = dict(row.preferences or {})
        for key, value in preferences.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        row.preferences = merged
    row.updated_at = utcnow()
    try:
        row.save()
    except peewee.IntegrityError:
        raise EmailTaken(changes.get("email")) from None
    return row


def deactivate(user_id: str) -> User | None:
    return update(user_id, {"is_active": False})


def clear_push_token(user_id: str, token: str) -> int:
    """Forget ``token`` if it is still the user's (the app may have registered a new one since);
    the number of rows changed (0 or 1)."""
    return (
        User.update(push_token=None, updated_at=utcnow())
        .where((User.id == user_id) & (User.push_token == token))
        .execute()
    )


def get_many(user_ids: set[str]) -> dict[str, User]:
    """The users of ``user_ids`` that exist, by id (as text)."""
    if not user_ids:
        return {}
    return {str(user.id): user for user in User.select().where(User.id.in_(list(user_ids)))}
