"""The user service's operations: each route with what it takes, answers and needs (registered by
:mod:`web.users.app`, documented by the gateway, which forwards these paths)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from web.common.api import Operation
from web.users import handlers
from web.users.schemas import LoginRefused, LoginRequest, Token, User, UserCreate, UserListQuery, UserPath, UserUpdate

TAGS = [
    {"name": "auth", "description": "Log in for a bearer token."},
    {"name": "users", "description": "Recipients and API users: profiles, preferences, roles."},
]
NOT_FOUND = "user not found"
BY_ID = {"user_id": "$response.body#/data/id"}

ADA = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "password": "correct-horse-1",
    "push_token": None,
    "preferences": {"email": True, "push": True, "language": "en"},
}

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/users/",
        "createUser",
        "Register a user",
        handlers.create_user,
        tags=("users",),
        description="Open to anyone and creates role user; a token, when sent, must be valid, and only an admin's "
        "may set role.",
        body=UserCreate,
        response=User,
        status=201,
        errors=(409,),
        notes={403: "role was sent without an admin token.", 409: "The e-mail is already registered."},
        security="optional",
        message="user created",
        links={
            "GetUser": {"operationId": "getUser", "parameters": BY_ID},
            "UpdateUser": {"operationId": "updateUser", "parameters": BY_ID},
            "DeactivateUser": {"operationId": "deactivateUser", "parameters": BY_ID},
        },
        examples={"ada": ADA},
    ),
    Operation(
        "GET",
        "/api/v1/users/",
        "listUsers",
        "List users, oldest first (admin and service tokens)",
        handlers.list_users,
        tags=("users",),
        query=UserListQuery,
        response=list[User],
        paginated=True,
        access="privileged",
        message="users",
    ),
    Operation(
        "GET",
        "/api/v1/users/{user_id}",
        "getUser",
        "A user's profile",
        handlers.get_user,
        tags=("users",),
        description="A user token reads only itself; another user's profile answers 404, as a missing one does.",
        path_params=UserPath,
        response=User,
        not_found=NOT_FOUND,
        message="user",
    ),
    Operation(
        "PATCH",
        "/api/v1/users/{user_id}",
        "updateUser",
        "Change a user's profile",
        handlers.update_user,
        tags=("users",),
        description="Only the fields sent change. A user token changes only itself (another user answers 404) and "
        "may not set role or is_active (403).",
        path_params=UserPath,
        body=Annotated[UserUpdate, Meta(extra_json_schema={"minProperties": 1})],
        response=User,
        errors=(403, 409),
        notes={403: "role or is_active sent without an admin token.", 409: "The new e-mail is someone else's."},
        not_found=NOT_FOUND,
        message="user updated",
        examples={"preferences": {"preferences": {"push": False, "language": "fr"}}},
    ),
    Operation(
        "DELETE",
        "/api/v1/users/{user_id}",
        "deactivateUser",
        "Deactivate a user",
        handlers.delete_user,
        tags=("users",),
        description="The user stays, with is_active false: it can no longer log in or be sent to, and an admin may "
        "read it and set is_active true again.",
        path_params=UserPath,
        response=User,
        not_found=NOT_FOUND,
        message="user deactivated",
    ),
    Operation(
        "POST",
        "/api/v1/auth/login",
        "login",
        "Log in for a bearer token",
        handlers.login,
        tags=("auth",),
        body=LoginRequest,
        response=Token,
        errors=(401, 429),
        error_data=LoginRefused,
        notes={
            401: "Unknown e-mail, wrong password or inactive user: one answer for all.",
            429: "Too many failed logins for this account or from this address; Retry-After says when to try.",
        },
        security="none",
        message="logged in",
        examples={"admin": {"email": "admin@herald.local", "password": "the printed password"}},
    ),
]
