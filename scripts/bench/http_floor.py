"""The gateway's physical reference in ``make bench``: one bare aiohttp process answering the same POST.

It reads the body and answers 202 with a small envelope, nothing else, on aiohttp's default loop,
so it is what this machine can do for the same request at the same moment; the gateway's figures
are printed as ratios to it (README, "Benchmarks"). Usage: ``python scripts/bench/http_floor.py PORT``.
"""

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"success": True, "data": {"status": "pending"}}, status=202)


app = web.Application()
app.router.add_post("/api/v1/notifications/", accept)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
