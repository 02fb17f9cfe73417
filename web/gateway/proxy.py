"""Forwarding of ``/api/v1/auth``, ``/users`` and ``/templates`` so a client needs only port 8000.

The request goes on as it came (method, path, query, body, auth and correlation headers, and the
client's address appended to ``X-Forwarded-For``); the service's answer comes back as it is. A
service that cannot be reached is a 503 in the envelope. The services take JWTs only: an API key
(which only the gateway can look up) is checked here and forwarded as a one-minute service token
carrying the key's caller (``apikey:<id>``), so a key works wherever a service token does.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from models import api_key
from web.common import app_keys
from web.common.app_keys import correlation_id_key
from web.common.auth import issue_token
from web.common.envelope import ApiError
from web.common.login_limits import forwarded_for

FORWARDED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept", "X-Correlation-ID")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "WWW-Authenticate", "Allow")
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=2)
#: Lifetime of the service token an API key is forwarded as: one request's worth.
FORWARDED_TOKEN_TTL_S = 60


def forward_to(base_of):
    """A handler forwarding to the service whose base URL ``base_of(settings)`` gives."""

    async def forward(request: web.Request) -> web.Response:
        settings = request.app[app_keys.settings_key]
        session = request.app[app_keys.http_client_key]
        headers = {h: request.headers[h] for h in FORWARDED_REQUEST_HEADERS if h in request.headers}
        headers["X-Correlation-ID"] = request[correlation_id_key]
        headers["X-Forwarded-For"] = forwarded_for(request)  # the login limits count by client address
        bearer = headers.get("Authorization", "").partition(" ")[2].strip()
        if api_key.looks_like_key(bearer):
            caller = await request.app[app_keys.api_keys_key].authenticate(bearer)
            token = issue_token(settings, sub=caller.sub, role=caller.role, ttl_s=FORWARDED_TOKEN_TTL_S)
            headers["Authorization"] = f"Bearer {token}"
        body = await request.read() if request.can_read_body else None
        url = base_of(settings) + request.rel_url.raw_path_qs
        try:
            async with session.request(
                request.method, url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
            ) as upstream:
                payload = await upstream.read()
                out = {h: upstream.headers[h] for h in FORWARDED_RESPONSE_HEADERS if h in upstream.headers}
                return web.Response(status=upstream.status, body=payload, headers=out)
        except (aiohttp.ClientError, TimeoutError):
            raise ApiError(
                "SERVICE_UNAVAILABLE", "the service behind this path is unavailable", headers={"Retry-After": "5"}
            ) from None

    return forward
