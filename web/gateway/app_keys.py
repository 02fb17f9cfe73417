"""The gateway's own AppKeys (the ones every service shares are in :mod:`web.common.app_keys`)."""

from __future__ import annotations

from aiohttp import web

from models.status_writer import StatusWriter
from web.gateway.publisher import Publisher
from web.gateway.sending import SendPipeline

pipeline_key = web.AppKey("pipeline", SendPipeline)
publisher_key = web.AppKey("publisher", Publisher)
#: A status writer on a blocking Redis client, for work done in the publishing threads.
status_writer_key = web.AppKey("status_writer", StatusWriter)
