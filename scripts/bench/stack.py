"""Herald as ``make bench`` runs it: private stores, the three HTTP services, users and a template.

Everything lives in a database, RabbitMQ vhost and Redis key prefix of its own, dropped when the
run ends, so a bench never touches another checkout's data (README, "Benchmarks"); every process
listens on 127.0.0.1 only, and every process started here is stopped on the way out.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pika
import psycopg2

from messaging.topology import EMAIL_QUEUE
from scripts.bench import config
from settings import Settings
from tests.support import resources
from tests.support.ports import free_port
from tests.support.processes import BIN, ROOT, herald_process, wait_for
from web.common.auth import issue_token

ROLES = ("users", "templates", "gateway")


@dataclass
class Herald:
    env: dict[str, str]
    db_url: str
    amqp_url: str
    gateway: str
    pids: dict[str, int]
    lua_env: dict[str, str]
    logs: Path
    #: A window with Herald idle: the shared services' background rate (see ``proc.per_unit``).
    background: dict | None = None

    def backends(self) -> dict[str, set[int]]:
        """The PostgreSQL backends serving the bench's database now: its share of PostgreSQL's CPU."""
        sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        return {"postgresql": set(_query(self.db_url, sql))}

    def empty_queue(self) -> None:
        """Purge ``email.queue`` before a run that accepts sends: a run then starts from the same
        state as every other, and the backlog of the runs before it cannot reach the queue's
        100,000-message limit, where RabbitMQ refuses publishes and the run would measure 503s.
        The delivery phases accept the backlog they need themselves (``delivery.top_up``)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            connection.channel().queue_purge(EMAIL_QUEUE)
        finally:
            connection.close()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _api(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - our own service on 127.0.0.1
        return json.loads(resp.read())


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as resp:  # noqa: S310 - 127.0.0.1
            return resp.status == 200
    except OSError:
        return False


def start(stack: ExitStack, logs: Path) -> Herald:
    """Private stores, migrations, the services (``WEB_PROCESSES`` each), a template and the users."""
    db_url = stack.enter_context(resources.postgres_database())
    stack.callback(close_connections)
    prefix = stack.enter_context(resources.redis_prefix())
    amqp_url, _ = stack.enter_context(resources.rabbit_vhost())
    ports = {role: free_port() for role in ROLES}
    env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": resources.REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "RABBITMQ_URL": amqp_url,
        "JWT_SECRET": uuid.uuid4().hex * 2,
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_HOUR": str(10**9),
        "GATEWAY_PORT": str(ports["gateway"]),
        "USERS_PORT": str(ports["users"]),
        "TEMPLATES_PORT": str(ports["templates"]),
        "USER_SERVICE_URL": f"http://127.0.0.1:{ports['users']}",
        "TEMPLATE_SERVICE_URL": f"http://127.0.0.1:{ports['templates']}",
        "SMTP_HOST": "127.0.0.1",
        "HOST": "127.0.0.1",
        "WEB_PROCESSES": str(config.WEB_PROCESSES),
        "WORKER_PREFETCH_MARGIN": str(config.PREFETCH_MARGIN),
    }
    settings = Settings.from_env(env)
    subprocess.run(
        [str(BIN / "python"), "-m", "scripts.migrate"],
        cwd=ROOT,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    pids = {}
    for role in ROLES:
        proc = stack.enter_context(
            herald_process([str(BIN / "python"), "-m", f"web.{role}"], env, logs / f"{role}.log")
        )
        pids[role] = proc.pid
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    wait_for(lambda: _healthy(gateway), timeout=60, what="the gateway's /health")

    admin = issue_token(settings, sub=str(uuid.uuid4()), role="admin", ttl_s=6 * 3600)
    code = "bench-" + uuid.uuid4().hex[:6]
    template = {"code": code, "name": "Bench", "subject": "Hello {{ name }}"}
    template["content"] = "<p>Hello {{ name }}, see {{ link }}</p>"
    _api(gateway + "/api/v1/templates/", template, admin)
    users = []
    for i in range(config.USERS):
        body = {"name": f"u{i}", "email": f"bench{i}@example.com", "password": "bench-password-1"}
        body["preferences"] = {"email": True, "push": True}
        users.append(_api(gateway + "/api/v1/users/", body)["data"]["id"])
    users_file = logs / "users.txt"
    users_file.write_text("\n".join(users) + "\n")
    lua_env = {"BENCH_USERS": str(users_file), "BENCH_TOKEN": admin, "BENCH_TEMPLATE": code}
    return Herald(env, db_url, amqp_url, gateway, pids, lua_env, logs)


_connections: dict[str, psycopg2.extensions.connection] = {}


def _query(db_url: str, sql: str) -> list:
    """One connection kept for the whole run, since the bench shares PostgreSQL (and its
    ``max_connections``) with the machine's other work; refused or broken, it is retried for 30 s."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = _connections.get(db_url)
            if conn is None or conn.closed:
                conn = _connections[db_url] = psycopg2.connect(db_url)
                conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
            return [row[0] for row in rows] if rows and len(rows[0]) == 1 else rows
        except psycopg2.OperationalError:
            _connections.pop(db_url, None)
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def close_connections() -> None:
    """Before the database is dropped."""
    for conn in _connections.values():
        conn.close()
    _connections.clear()


def delivered(db_url: str) -> int:
    return _query(db_url, "SELECT count(*) FROM notification_status WHERE status = 'delivered'")[0]


def statuses(db_url: str) -> dict[str, int]:
    return dict(_query(db_url, "SELECT status, count(*) FROM notification_status GROUP BY status"))
