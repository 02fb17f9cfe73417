"""The machine's ceiling for `make bench`: a minimal aiohttp endpoint answering a small JSON POST."""

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"success": True, "data": {"status": "pending"}}, status=202)


app = web.Application()
app.router.add_post("/api/v1/notifications/", accept)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
