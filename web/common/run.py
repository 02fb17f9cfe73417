"""Start one HTTP service: settings, JSON logging, then aiohttp's runner on the service's port."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from logs import setup_logging
from settings import Settings, load_or_exit


def run_service(create_app: Callable[[Settings], web.Application], *, service: str,
                port_of: Callable[[Settings], int]) -> None:
    settings = load_or_exit()
    setup_logging(service=service, level=settings.log_level)
    logging.getLogger(__name__).info("starting %s", service, extra={"settings": settings.redacted()})
    web.run_app(create_app(settings), host=settings.host, port=port_of(settings), print=None,
                access_log=None, shutdown_timeout=10)
