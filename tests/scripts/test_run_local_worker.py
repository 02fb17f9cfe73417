"""``make run``'s in-process worker consumes every role's queues, webhooks included: an outcome
recorded in the embedded system (SQLite, in-process broker and Redis) reaches a local receiver."""

from __future__ import annotations

import asyncio
import logging
import uuid

from actors.setup import build
from messaging.topology import ALL_QUEUES
from models.base import notifications_db, utcnow
from models.dao import webhooks
from models.notification import DELIVERED, PENDING, Notification
from scripts import run_local
from scripts.migrate import run as migrate
from settings import Settings
from tests.support.webhook_receiver import start_receiver


async def test_the_embedded_worker_sends_webhooks(tmp_path, aiohttp_server, monkeypatch):
    receiver = await start_receiver(aiohttp_server)
    monkeypatch.chdir(tmp_path)  # make run keeps its var/ in the working directory
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/herald.sqlite3",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "LOG_LEVEL": "WARNING",
    }
    settings, _ = run_local.prepare(Settings.from_env(env, embedded=True))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    broker = build(settings, service="herald")  # sets up logging as make run does; undone below
    migrate(settings, match_admin_login=True)
    worker = run_local.start_worker(broker)
    try:
        assert set(ALL_QUEUES) <= set(worker.consumers)
        nid = str(uuid.uuid4())

        def deliver() -> str:
            with notifications_db.connection_context():
                hook = webhooks.create(url=receiver.url("/in"), events=None, description=None, created_by="a")
                now = utcnow()
                Notification.create(
                    notification_id=nid,
                    request_id="r-1",
                    caller="a",
                    user_id=uuid.uuid4(),
                    template_code="welcome",
                    notification_type="email",
                    status=PENDING,
                    created_at=now,
                    updated_at=now,
                )
                broker.runtime.status.record(nid, outcome="delivered", status=DELIVERED)
                return hook.secret

        receiver.secrets["/in"] = await asyncio.to_thread(deliver)
        [hit] = await receiver.wait_for(1, "/in", timeout=20)
    finally:
        worker.stop()
        broker.close()
        broker.runtime.databases.close()
        root.handlers[:], root.level = handlers, level
    assert hit.verified
    assert hit.json["type"] == "notification.delivered" and hit.json["data"]["notification_id"] == nid
