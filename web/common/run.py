"""Start one HTTP service: settings, JSON logging, then aiohttp's runner on the service's port.

``WEB_PROCESSES`` > 1 forks that many copies sharing the port (``SO_REUSEPORT``): one aiohttp
process uses one core, and the send path is CPU-bound in the event loop. The parent only watches:
if a child dies, it stops the others and exits non-zero, so the supervisor restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable

import uvloop
from aiohttp import web

from logs import setup_logging
from settings import Settings, load_or_exit


def _serve(
    create_app: Callable[[Settings], web.Application], settings: Settings, service: str, port: int, reuse_port: bool
) -> None:
    setup_logging(service=service, level=settings.log_level)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # a faster loop; see the README's dependencies
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=10,
        reuse_port=reuse_port or None,
    )


def run_service(
    create_app: Callable[[Settings], web.Application], *, service: str, port_of: Callable[[Settings], int]
) -> None:
    settings = load_or_exit()
    setup_logging(service=service, level=settings.log_level)
    log = logging.getLogger(__name__)
    log.info("starting %s", service, extra={"settings": settings.redacted(), "processes": settings.web_processes})
    for warning in settings.warnings():
        log.warning(warning)
    port = port_of(settings)
    if settings.web_processes == 1:
        _serve(create_app, settings, service, port, reuse_port=False)
        return
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_serve, args=(create_app, settings, service, port, True), daemon=False)
        for _ in range(settings.web_processes)
    ]
    for child in children:
        child.start()

    def stop_all(signum, _frame):
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    try:
        _pid, status = os.wait()
    except ChildProcessError:
        return
    stop_all(signal.SIGTERM, None)
    for child in children:
        child.join(timeout=15)
    sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)
