"""The gateway's own AppKeys (the shared ones are in web.common.keys)."""

from __future__ import annotations

from aiohttp import web

from web.gateway.publisher import Publisher
from web.gateway.sending import SendPipeline

pipeline_key = web.AppKey("pipeline", SendPipeline)
publisher_key = web.AppKey("publisher", Publisher)
