"""The template service's URL table (each path served with and without its trailing slash)."""

from __future__ import annotations

from web.common.app import Route
from web.templates import handlers

ROUTES: list[Route] = [
    ("POST", "/api/v1/templates/", handlers.create_template),
    ("GET", "/api/v1/templates/", handlers.list_templates),
    ("GET", "/api/v1/templates/{code}", handlers.get_template),
    ("PUT", "/api/v1/templates/{code}", handlers.update_template),
    ("GET", "/api/v1/templates/{code}/versions", handlers.list_versions),
    ("POST", "/api/v1/templates/{code}/render", handlers.render_template),
]
