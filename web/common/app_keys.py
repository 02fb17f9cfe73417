"""Every ``web.AppKey`` the services use, so state is typed and found in one place."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from models.base import Databases
from models.redis_keys import RedisKeys
from settings import Settings
from web.common.metrics import HttpMetrics

settings_key = web.AppKey("settings", Settings)
redis_key = web.AppKey("redis", aioredis.Redis)
redis_keys_key = web.AppKey("redis_keys", RedisKeys)
databases_key = web.AppKey("databases", Databases)
db_executor_key = web.AppKey("db_executor", ThreadPoolExecutor)
metrics_key = web.AppKey("metrics", HttpMetrics)
http_client_key = web.AppKey("http_client", aiohttp.ClientSession)
health_checks_key = web.AppKey("health_checks", dict)
#: The request's correlation id (taken from X-Correlation-ID or generated).
correlation_id_key = web.RequestKey("correlation_id", str)
#: The API-key authenticator, on the gateway only (the services take JWTs, which it forwards).
api_keys_key = web.AppKey("api_keys", object)
