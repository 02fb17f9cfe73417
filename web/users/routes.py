"""The user service's routes; ``add_routes`` serves each with and without the trailing slash."""

from __future__ import annotations

from web.common.app import Route
from web.users import handlers

ROUTES: list[Route] = [
    ("POST", "/api/v1/users/", handlers.create_user),
    ("GET", "/api/v1/users/", handlers.list_users),
    ("GET", "/api/v1/users/{user_id}", handlers.get_user),
    ("PATCH", "/api/v1/users/{user_id}", handlers.update_user),
    ("DELETE", "/api/v1/users/{user_id}", handlers.delete_user),
    ("POST", "/api/v1/auth/login", handlers.login),
]
