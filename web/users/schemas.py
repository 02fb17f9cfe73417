"""What the user service takes and answers, declared once: msgspec checks requests against these
Structs and the OpenAPI document is written from them (ARCHITECTURE.md, "Where each policy lives").

``null`` for an optional field means the same as leaving it out, except in a change (PATCH), where
``push_token: null`` and ``preferences.language: null`` clear the value (README, "Using it").
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from models.user import ROLES
from web.common import fields
from web.common.fields import NO_NUL, PageQuery, Timestamp, line, text

PASSWORD_MIN, PASSWORD_MAX = 8, 256
PUSH_TOKEN_MAX = 4096
#: An address as Herald accepts it: no space, control character or Unicode space before the @.
EMAIL_PATTERN = (
    r"^[^@ \x00-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,64}@[A-Za-z0-9.-]{1,253}$(?!\n)"
)

Name = line(1, 200, description="Display name.", examples=("Ada Lovelace",))
Email = Annotated[
    str,
    Meta(
        max_length=320, pattern=EMAIL_PATTERN, description="Stored lower-cased; unique.", examples=["ada@example.com"]
    ),
]
Password = text(PASSWORD_MIN, PASSWORD_MAX, description="Never returned or logged.", examples=("correct-horse-1",))
PushToken = line(1, PUSH_TOKEN_MAX, description="The device's FCM registration token.")
Language = Annotated[fields.Language, Meta(description="Picks the template language; falls back to en.")]
Role = Annotated[Literal[ROLES], Meta(description="Admin token only (403 otherwise); registration makes a user.")]


class Preferences(Struct, forbid_unknown_fields=True):
    """The channels a user accepts and their language. At registration an absent or null channel
    means true; in a change, only the keys sent change (a null channel stays as it was, a null
    language is cleared)."""

    email: bool | None = None
    push: bool | None = None
    language: Language | UnsetType | None = UNSET


class UserCreate(Struct, forbid_unknown_fields=True):
    """A registration; open to anyone (a token, when sent, must be valid)."""

    name: Name
    email: Email
    password: Password
    push_token: PushToken | None = None
    preferences: Preferences | None = None
    role: Role | UnsetType = UNSET


class UserUpdate(Struct, forbid_unknown_fields=True):
    """A change: only the fields sent change, at least one. A user token may change only itself,
    and never its role or is_active."""

    name: Name | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    password: Password | UnsetType = UNSET
    push_token: Annotated[PushToken | None, Meta(description="null removes the token.")] | UnsetType = UNSET
    preferences: Preferences | UnsetType = UNSET
    role: Role | UnsetType = UNSET
    is_active: Annotated[bool, Meta(description="Admin token only (403 otherwise).")] | UnsetType = UNSET


class LoginRequest(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(min_length=1, max_length=320, pattern=NO_NUL, examples=["admin@herald.local"])]
    password: text(1, 1024, examples=("correct-horse-1",))


class LoginRefused(Struct):
    """``data`` of a 429 login: seconds until the failures are forgotten."""

    retry_after: Annotated[int, Meta(ge=1)]


class UserListQuery(PageQuery, forbid_unknown_fields=False):
    """The user list's filters (the operator console's user search)."""

    email: text(1, 320, description="Exactly this address, any case.") | None = None
    search: text(1, 320, description="Part of an e-mail address or a name, any case.") | None = None


class UserPath(Struct):
    user_id: Annotated[uuid.UUID, Meta(description="The user's id; a malformed one answers 404.")]


class StoredPreferences(Struct):
    """As stored: a channel left out is on."""

    email: bool = True
    push: bool = True
    language: str | None = None


class User(Struct):
    id: uuid.UUID
    name: str
    email: str
    push_token: str | None
    preferences: StoredPreferences
    role: Literal[ROLES]
    is_active: Annotated[bool, Meta(description="false once deleted (deactivated).")]
    created_at: Timestamp
    updated_at: Timestamp


class Token(Struct):
    access_token: Annotated[str, Meta(description="An HS256 JWT with exp, iss, aud, sub (the user id), role and iat.")]
    token_type: Literal["bearer"]
    expires_in: Annotated[int, Meta(ge=1, description="Seconds until it expires.")]
