"""The paths the gateway forwards to the user and template services, matched whole, trailing slash
or not (the gateway's own operations are in :mod:`web.gateway.operations`)."""

from __future__ import annotations

from web.gateway.proxy import forward_to

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
