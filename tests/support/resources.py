"""Isolated resources on the machine's real PostgreSQL, Redis and RabbitMQ, made and dropped per use."""

from __future__ import annotations

import subprocess
import time
import uuid
from contextlib import contextmanager

import psycopg2
import redis

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=root dbname=postgres"
PG_URL = "postgresql://root@127.0.0.1:5432/{name}"
REDIS_URL = "redis://127.0.0.1:6379/0"
RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/{vhost}"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _pg(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN_DSN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@contextmanager
def postgres_database(*, template: str | None = None):
    """A fresh database (optionally a copy of ``template``); yields its URL, drops it after."""
    name = unique("herald_test")
    _pg(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield PG_URL.format(name=name)
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_prefix():
    """A key prefix of its own; every key under it is deleted after."""
    prefix = unique("herald_test") + ":"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def declare_topology(amqp_url: str) -> None:
    """Herald's exchange, queues and bindings on the URL's vhost, as every Herald process
    declares them at start."""
    from messaging.rabbitmq import HeraldBroker

    broker = HeraldBroker(url=amqp_url, middleware=[])
    try:
        broker.declare_topology()
    finally:
        broker.close()


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60).stdout


@contextmanager
def rabbit_vhost():
    """A RabbitMQ vhost of its own (guest may use it); yields its AMQP URL, deletes it after."""
    vhost = unique("herald_test")
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield RABBIT_URL.format(vhost=vhost), vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


def set_queue_full(vhost: str, full: bool) -> None:
    """A policy capping ``email.queue`` at 0 messages: with the queue's ``reject-publish`` overflow,
    RabbitMQ then nacks every publish, as it does for a full queue."""
    if full:
        rabbitmqctl(
            "set_policy", "-p", vhost, "--apply-to", "queues", "herald-full", "^email\\.queue$", '{"max-length": 0}'
        )
    else:
        rabbitmqctl("clear_policy", "-p", vhost, "herald-full")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = rabbitmqctl("list_queues", "-p", vhost, "name", "policy")
        row = next((cols for cols in map(str.split, out.splitlines()) if cols and cols[0] == "email.queue"), [])
        if ("herald-full" in row) == full:
            return
        time.sleep(0.1)
    raise AssertionError(f"policy not {'applied' if full else 'cleared'}: {out}")
