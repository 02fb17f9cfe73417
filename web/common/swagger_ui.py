"""``/docs``: the interactive API reference, Swagger UI from the swagger-ui-bundle package, served
entirely by Herald (README, "Using it"): no asset comes from the internet, so it works offline and
under a strict Content-Security-Policy (the start-up script is a file, never inline).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

STATIC = "/docs/static"
INIT_SCRIPT = Path(__file__).with_name("static") / "swagger-init.js"
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Herald API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="{STATIC}/favicon-32x32.png">
<link rel="stylesheet" href="{STATIC}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{STATIC}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
#: Swagger UI sets inline styles and draws icons from data: URLs; everything else is Herald's own.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers=HEADERS)


async def init_script(request: web.Request) -> web.Response:
    return web.Response(text=INIT_SCRIPT.read_text(), content_type="application/javascript", headers=HEADERS)


def setup(app: web.Application) -> None:
    """The page's script and Swagger UI's files; the page itself is an operation of the document."""
    app.router.add_get("/docs/init.js", init_script)
    app.router.add_static(STATIC, Path(str(swagger_ui_path)))
