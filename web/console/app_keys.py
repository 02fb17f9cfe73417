"""The console's AppKeys and RequestKeys; the gateway's own state is reached through ``gateway_key``."""

from __future__ import annotations

from aiohttp import web

from providers.rendering import Renderer
from web.console.latency import LatencyWindow
from web.console.services import Services
from web.console.sessions import Session, SessionStore

#: The gateway application the console is mounted on (its settings, Redis, database, publisher).
gateway_key = web.AppKey("console_gateway", web.Application)
sessions_key = web.AppKey("console_sessions", SessionStore)
services_key = web.AppKey("console_services", Services)
latency_key = web.AppKey("console_latency", LatencyWindow)
renderer_key = web.AppKey("console_renderer", Renderer)
#: The signed-in admin's session, set by the session middleware on every page but the sign-in form.
session_key = web.RequestKey("console_session", Session)
