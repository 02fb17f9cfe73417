"""``make run``: the whole of Herald in one process, on a machine with nothing but Python.

Each store whose URL is unset gets an embedded stand-in (a SQLite file, dramatiq's in-process
broker, an in-process Redis, mail and push written to ``var/outbox``); each one that is set is used
for real. The three HTTP services listen on their usual ports and a worker consumes in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
from pathlib import Path

import dramatiq
from aiohttp import web

from messaging.topology import ALL_QUEUES
from settings import Settings, load_or_exit

log = logging.getLogger("scripts.run_local")

DEFAULT_ADMIN = "admin@herald.local"
PASSWORD_FILE = Path("var/admin-password")


def _admin_password(settings: Settings) -> str:
    """The configured password, else one generated on the first run and kept in ``var/``.

    Whichever it is, :func:`main` makes the bootstrap admin in the database match it, so the login
    printed is the login that works (see ``scripts.migrate.ensure_admin``).
    """
    if settings.bootstrap_admin_password:
        return settings.bootstrap_admin_password
    kept = PASSWORD_FILE.read_text().strip() if PASSWORD_FILE.exists() else ""
    if kept:
        return kept
    password = secrets.token_urlsafe(12)
    PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    PASSWORD_FILE.write_text(password + "\n")
    PASSWORD_FILE.chmod(0o600)
    return password


def prepare(settings: Settings) -> tuple[Settings, str]:
    Path("var").mkdir(exist_ok=True)
    Path(settings.outbox_dir).mkdir(parents=True, exist_ok=True)
    password = _admin_password(settings)
    settings = dataclasses.replace(
        settings,
        bootstrap_admin_email=settings.bootstrap_admin_email or DEFAULT_ADMIN,
        bootstrap_admin_password=password,
        jwt_secret=settings.jwt_secret or _local_secret(),
    )
    return settings, password


def _local_secret() -> str:
    path = Path("var/jwt-secret")
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def serve(settings: Settings, broker: dramatiq.Broker) -> None:
    from web.gateway.app import create_app as gateway_app
    from web.templates.app import create_app as templates_app
    from web.users.app import create_app as users_app

    runners = []
    for app, port in (
        (users_app(settings), settings.users_port),
        (templates_app(settings), settings.templates_port),
        (gateway_app(settings, broker=broker), settings.gateway_port),
    ):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, port).start()
        runners.append(runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def banner(settings: Settings, password: str) -> str:
    base = f"http://localhost:{settings.gateway_port}"
    stores = {
        "database": settings.database_url,
        "redis": settings.redis_url or "embedded (in-process)",
        "rabbitmq": "set" if settings.rabbitmq_url else "embedded (in-process)",
        "email": f"SMTP {settings.smtp_host}:{settings.smtp_port}"
        if settings.smtp_host
        else f"written to {settings.outbox_dir}/",
        "push": "FCM" if settings.fcm_project_id else f"written to {settings.outbox_dir}/",
        "webhooks": "sent by the in-process worker"
        + ("" if settings.webhook_allow_private else " (WEBHOOK_ALLOW_PRIVATE=true for a receiver on this machine)"),
    }
    lines = [
        "",
        "Herald is running.",
        f"  gateway    {base}   (API docs: {base}/docs)",
        f"  users      http://localhost:{settings.users_port}",
        f"  templates  http://localhost:{settings.templates_port}",
        *(f"  {k:<10} {v}" for k, v in stores.items()),
        "",
        f"  admin login: {settings.bootstrap_admin_email} / {password}",
        "",
        "  Try it:",
        f"    TOKEN=$(curl -s {base}/api/v1/auth/login -H 'Content-Type: application/json' \\",
        f'      -d \'{{"email": "{settings.bootstrap_admin_email}", "password": "{password}"}}\' \\',
        '      | python3 -c \'import sys, json; print(json.load(sys.stdin)["data"]["access_token"])\')',
        f'    curl -s {base}/api/v1/templates/ -H "Authorization: Bearer $TOKEN" \\',
        "      -H 'Content-Type: application/json' \\",
        '      -d \'{"code": "welcome", "name": "Welcome", "subject": "Hi {{ name }}", '
        '"content": "<p>Hello {{ name }}</p>"}\'',
        f"    USER=$(curl -s {base}/api/v1/users/ -H 'Content-Type: application/json' \\",
        '      -d \'{"name": "Ada", "email": "ada@example.com", "password": "correct-horse-1", '
        '"preferences": {"email": true, "push": true}}\' \\',
        '      | python3 -c \'import sys, json; print(json.load(sys.stdin)["data"]["id"])\')',
        f'    curl -s {base}/api/v1/notifications/ -H "Authorization: Bearer $TOKEN" \\',
        "      -H 'Content-Type: application/json' \\",
        '      -d \'{"notification_type": "email", "user_id": "\'$USER\'", "template_code": "welcome", '
        '"variables": {"name": "Ada"}, "request_id": "demo-1"}\'',
        "",
    ]
    return "\n".join(lines)


def start_worker(broker: dramatiq.Broker) -> dramatiq.Worker:
    """The in-process worker: every queue the roles' workers consume (e-mail, push, maintenance,
    webhooks), with their delay queues."""
    worker = dramatiq.Worker(broker, queues=set(ALL_QUEUES), worker_threads=4, worker_timeout=100)
    worker.start()
    return worker


def main() -> None:
    os.environ.setdefault("HERALD_EMBEDDED", "1")
    settings, password = prepare(load_or_exit(embedded=True))

    from actors.setup import build
    from scripts.migrate import run as migrate

    broker = build(settings, service="herald")
    migrate(settings, match_admin_login=True)
    worker = start_worker(broker)
    print(banner(settings, password), flush=True)
    try:
        asyncio.run(serve(settings, broker))
    finally:
        with contextlib.suppress(Exception):
            worker.stop()
        broker.close()


if __name__ == "__main__":
    main()
