"""The overview page, and the fragment of it that the page's script fetches every few seconds."""

from __future__ import annotations

import datetime as dt

import aiohttp_jinja2
from aiohttp import web

from middleware.circuit_breaker import BREAKERS
from web.console.app_keys import latency_key
from web.console.overview_data import collect
from web.console.pages import gateway, render

#: How often the page's script refreshes the figures, milliseconds (README, "Operator console").
REFRESH_MS = 5000


async def _context(request: web.Request) -> dict:
    overview = await collect(gateway(request), request.app[latency_key])
    return {"o": overview, "breaker_names": BREAKERS, "refresh_ms": REFRESH_MS, "now": dt.datetime.now(dt.UTC)}


async def overview(request: web.Request) -> web.Response:
    return await render(request, "overview.html", await _context(request))


async def overview_live(request: web.Request) -> web.Response:
    """Only the figures, for the page's script to swap in (no navigation, no layout)."""
    response = aiohttp_jinja2.render_template("_overview_live.html", request, await _context(request))
    response.headers["Cache-Control"] = "no-store"
    return response
