"""``/openapi.json`` and ``/docs``: the API described for people and tools."""

from __future__ import annotations

from aiohttp import web

from web.gateway.openapi import document

DOCS_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Herald API</title></head>
<body><h1>Herald API</h1><p>The OpenAPI 3 document is at <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>"""


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document())


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_HTML, content_type="text/html")
