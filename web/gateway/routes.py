"""The gateway's URL table. Forwarded prefixes are matched whole, trailing slash or not."""

from __future__ import annotations

from web.gateway import dead_letters, docs, handlers
from web.gateway.proxy import forward_to

ROUTES = [
    ("POST", "/api/v1/notifications", handlers.send_notification),
    ("GET", "/api/v1/notifications", handlers.list_notifications),
    ("GET", "/api/v1/notifications/{notification_id}", handlers.get_notification),
    ("POST", "/api/v1/{channel:email|push}/status", handlers.provider_receipt),
    ("GET", "/api/v1/dead-letters", dead_letters.list_dead_letters),
    ("POST", "/api/v1/dead-letters/{notification_id}/replay", dead_letters.replay_dead_letter),
    ("GET", "/openapi.json", docs.openapi_json),
    ("GET", "/docs", docs.docs_page),
]

#: (path prefix, settings attribute of the service's base URL)
FORWARDED = [
    ("/api/v1/auth", "user_service_url"),
    ("/api/v1/users", "user_service_url"),
    ("/api/v1/templates", "template_service_url"),
]


def forwarded_routes():
    for prefix, attr in FORWARDED:
        handler = forward_to(lambda settings, attr=attr: getattr(settings, attr))
        yield "*", prefix + "{tail:(/.*)?}", handler
