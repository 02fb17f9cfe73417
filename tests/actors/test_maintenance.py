"""The periodic jobs on a real RabbitMQ vhost, PostgreSQL and Redis, with a local webhook receiver;
the actors are called directly (not through the scheduler), then the scheduler command is run."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from pathlib import Path

import pika
import pytest
from aiohttp import web
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from actors import maintenance
from actors.runtime import Runtime
from messaging.rabbitmq import HeraldBroker
from models.base import utcnow
from models.notification import Notification
from settings import Settings
from tests.conftest import make_env
from tests.support.ports import free_port
from tests.support.processes import BIN, herald_process
from tests.support.resources import declare_topology


@pytest.fixture
def env(database_url, redis_prefix, rabbit_vhost):
    url, _ = rabbit_vhost
    env = make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url)
    declare_topology(url)
    return env


class Received(list):
    url = ""


@pytest.fixture
async def webhook(aiohttp_server):
    received = Received()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/alerts", hook)
    server = await aiohttp_server(app)
    received.url = str(server.make_url("/alerts"))
    return received


class Jobs:
    """A broker with the maintenance actors declared, and ways to call them off the event loop."""

    def __init__(self, env: dict[str, str], **overrides: str) -> None:
        self.settings = Settings.from_env({**env, **overrides})
        self.runtime = Runtime.from_settings(self.settings)
        self.broker = StubBroker()
        self.maintenance = maintenance.register(self.broker, self.runtime)
        # The actors run on the stub broker, off the event loop; the depths are read from the real
        # RabbitMQ, as a maintenance worker's own broker reads them.
        self.rabbit = HeraldBroker(url=self.settings.rabbitmq_url, middleware=[])
        self.maintenance.broker = self.rabbit

    async def monitor(self) -> None:
        await asyncio.to_thread(self.broker.actors["monitor_queues"])

    async def stuck(self) -> None:
        await asyncio.to_thread(self.broker.actors["report_stuck_notifications"])

    @property
    def redis(self):
        return self.runtime.status.redis

    def close(self) -> None:
        self.broker.close()
        self.rabbit.close()
        self.runtime.databases.close()


@pytest.fixture
def jobs(env, webhook):
    made: list[Jobs] = []

    def make(**overrides: str) -> Jobs:
        made.append(Jobs(env, ALERT_WEBHOOK_URL=webhook.url, **overrides))
        return made[-1]

    yield make
    for j in made:
        j.close()


def publish(url: str, routing_key: str, count: int = 1) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for i in range(count):
        ch.basic_publish("notifications.direct", routing_key, json.dumps({"n": i}).encode())
    conn.close()


def purge(url: str, queue: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    conn.channel().queue_purge(queue)
    conn.close()


async def test_dlq_over_threshold_alerts_once_then_resolves(jobs, webhook, env, caplog):
    j = jobs(DLQ_ALERT_THRESHOLD="2")
    publish(env["RABBITMQ_URL"], "failed", 3)
    with caplog.at_level(logging.ERROR, logger="actors.maintenance"):
        await j.monitor()
    [alert] = webhook
    assert alert["alert"] == "dlq_depth" and alert["status"] == "firing" and alert["source"] == "herald"
    assert alert["details"] == {"queue": "failed.queue", "depth": 3, "threshold": 2}
    assert any(r.levelno == logging.ERROR and "dlq_depth" in r.getMessage() for r in caplog.records)
    assert j.maintenance.counters.alerts == 1 and j.maintenance.counters.depths["failed.queue"] == 3

    await j.monitor()  # the next tick: still over, nothing new to say
    assert len(webhook) == 1

    purge(env["RABBITMQ_URL"], "failed.queue")
    await j.monitor()
    assert [(a["alert"], a["status"]) for a in webhook] == [("dlq_depth", "firing"), ("dlq_depth", "resolved")]


async def test_threshold_zero_alerts_on_a_single_dead_letter(jobs, webhook, env):
    j = jobs(DLQ_ALERT_THRESHOLD="0")
    await j.monitor()
    assert webhook == []
    publish(env["RABBITMQ_URL"], "failed", 1)
    await j.monitor()
    assert [(a["alert"], a["details"]["depth"]) for a in webhook] == [("dlq_depth", 1)]


async def test_open_breaker_and_a_delivery_backlog_alert(jobs, webhook, env):
    j = jobs()
    j.redis.hset(j.runtime.status.keys.circuit("smtp"), mapping={"state": "OPEN", "failure_count": "5"})
    publish(env["RABBITMQ_URL"], "push", maintenance.BACKLOG_LIMIT + 1)
    await j.monitor()
    assert sorted(a["alert"] for a in webhook) == ["backlog:push.queue", "circuit:smtp"]
    assert j.maintenance.counters.breakers == {"smtp": "OPEN", "fcm": "CLOSED"}
    await j.monitor()
    assert len(webhook) == 2


async def test_stuck_pending_notifications_are_reported(jobs, webhook, caplog):
    j = jobs(RETRY_MAX="5", RETRY_BACKOFF_UNIT_MS="1000")
    assert j.maintenance.stuck_after() == dt.timedelta(seconds=62 + 600)

    def row(age: dt.timedelta, status: str = "pending") -> str:
        nid = str(uuid.uuid4())
        at = utcnow() - age
        Notification.create(
            notification_id=nid,
            request_id=nid,
            caller="test",
            user_id=uuid.uuid4(),
            template_code="t",
            notification_type="email",
            status=status,
            created_at=at,
            updated_at=at,
        )
        return nid

    old = row(dt.timedelta(hours=2))
    row(dt.timedelta(minutes=1))
    row(dt.timedelta(hours=3), status="failed")
    with caplog.at_level(logging.ERROR, logger="actors.maintenance"):
        await j.stuck()
    [alert] = webhook
    assert alert["alert"] == "stuck_pending" and alert["details"]["count"] == 1
    assert alert["details"]["sample"] == [old]
    assert any("stuck_pending" in r.getMessage() and "1 notification" in r.getMessage() for r in caplog.records)
    await j.stuck()
    assert len(webhook) == 1


async def test_a_dead_webhook_never_breaks_the_job(env):
    settings = {"ALERT_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/alerts", "DLQ_ALERT_THRESHOLD": "0"}
    j = Jobs(env, **settings)
    try:
        publish(env["RABBITMQ_URL"], "failed", 1)
        await j.monitor()
        assert j.maintenance.counters.alerts == 1 and j.maintenance.counters.webhook_failures == 1
        assert j.maintenance.counters.job_errors == 0
    finally:
        j.close()


async def test_a_tick_runs_once_however_often_it_is_delivered(jobs, webhook, env):
    """Two schedulers (or a redelivery) send the same scheduled_at: one run, one alert."""
    j = jobs(DLQ_ALERT_THRESHOLD="0")
    publish(env["RABBITMQ_URL"], "failed", 1)
    tick = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    actor = j.broker.actors["monitor_queues"]
    for _ in range(2):
        actor.send_with_options(scheduled_at=tick)
    worker = Worker(j.broker, worker_timeout=100)
    worker.start()
    try:
        await asyncio.to_thread(j.broker.join, "maintenance.queue")
    finally:
        worker.stop()
    counters = j.maintenance.counters
    assert (counters.ticks, counters.ticks_duplicate) == (1, 1)
    # the alert state was cleared here, so a second alert would show if the tick had run twice
    assert len(webhook) == 1


async def test_scheduler_and_maintenance_worker_raise_the_alert(env, tmp_path, webhook):
    """``periodiq actors`` enqueues the ticks and ``dramatiq actors --queues maintenance.queue`` runs
    them: one dead letter with ``DLQ_ALERT_THRESHOLD=0`` reaches the webhook once.

    ``maintenance_boot`` declares the jobs until actors/setup.py registers them itself (then it is a
    no-op: ``register`` is idempotent)."""
    boot = Path(tmp_path) / "maintenance_boot.py"
    boot.write_text(
        "import dramatiq\nfrom actors import maintenance\n\n"
        "broker = dramatiq.get_broker()\nmaintenance.register(broker, broker.runtime)\n"
    )
    env = {**env, "TZ": "UTC", "DLQ_ALERT_THRESHOLD": "0", "ALERT_WEBHOOK_URL": webhook.url}
    publish(env["RABBITMQ_URL"], "failed", 1)
    log = tmp_path / "scheduler.log"
    scheduler = [str(BIN / "periodiq"), "-v", "actors", "maintenance_boot", "--path", str(tmp_path)]
    workers = [
        str(BIN / "dramatiq"),
        "actors",
        "maintenance_boot",
        "--processes",
        "1",
        "--threads",
        "2",
        "--queues",
        "maintenance.queue",
        "--path",
        str(tmp_path),
    ]

    async def until(predicate, timeout: float, what: str):
        for _ in range(int(timeout / 0.25)):
            if predicate():
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}")

    with herald_process(scheduler, env, log), herald_process(workers, env, tmp_path / "worker.log"):
        await until(
            lambda: "report_stuck_notifications@maintenance.queue" in log.read_text(),
            30,
            "the scheduler's list of periodic actors",
        )
        # every minute matches "* * * * *": the first ticks go out at once (or at the next minute)
        await until(lambda: webhook, 80, "the alert of the first tick")
        await asyncio.sleep(1.0)
    text = log.read_text()
    assert "monitor_queues@maintenance.queue" in text and "* * * * *" in text
    assert "No periodic actor" not in text
    assert [(a["alert"], a["status"], a["details"]["depth"]) for a in webhook] == [("dlq_depth", "firing", 1)]
    assert "ALERT dlq_depth" in (tmp_path / "worker.log").read_text()
