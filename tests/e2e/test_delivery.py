"""A request to the gateway becomes a rendered e-mail in a real SMTP server, or a push on a local
FCM v1 server, with its status readable; delivered by ``dramatiq actors`` worker processes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pika
import pytest
import redis

from models.redis_keys import RedisKeys
from tests.support.processes import worker
from tests.support.resources import REDIS_URL
from tests.support.smtp_server import smtp_server


async def wait_status(stack, nid: str, wanted: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    note = None
    while time.monotonic() < deadline:
        resp = await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth())
        note = (await resp.json())["data"]
        if note and note["status"] == wanted:
            return note
        await asyncio.sleep(0.2)
    raise AssertionError(f"notification {nid} did not become {wanted}: {note}")


async def wait_mail(smtp, count: int, timeout: float = 30.0):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: smtp.wait_for(count, timeout))


def queue_depth(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue=queue, passive=True).method.message_count
    finally:
        conn.close()


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


async def test_email_end_to_end(stack, smtp, tmp_path, redis_prefix):
    user = await stack.create_user(name="Ada")
    template = await stack.create_template(
        subject="Welcome {{ name }}", content="<h1>Hi {{ name }}</h1><p>Open <a href='{{ link }}'>this</a></p>"
    )
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log"):
        body = {
            "notification_type": "email",
            "user_id": user["id"],
            "template_code": template["code"],
            "variables": {"name": "Ada <3", "link": "https://example.com/a"},
            "request_id": "e2e-email-1",
            "metadata": {"campaign": "launch"},
        }
        resp = await stack.client.post(
            "/api/v1/notifications/", json=body, headers={**stack.auth(), "X-Correlation-ID": "trace-e2e-1"}
        )
        assert resp.status == 202, await resp.text()
        assert resp.headers["X-Correlation-ID"] == "trace-e2e-1"
        nid = (await resp.json())["data"]["notification_id"]
        [mail] = await wait_mail(smtp, 1)
        note = await wait_status(stack, nid, "delivered")
    msg = mail.message
    assert mail.rcpt_tos == [user["email"]]
    assert msg["Subject"] == "Welcome Ada <3"
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<h1>Hi Ada &lt;3</h1>" in html and "https://example.com/a" in html
    assert "Hi Ada <3" in text and "<h1>" not in text
    assert note["delivered_at"] and note["retry_count"] == 0 and note["error"] is None
    assert [a["outcome"] for a in note["attempts"]] == ["delivered"]
    assert note["metadata"] == {"campaign": "launch"}
    # the send claim ended with the recording: another copy of the message would not wait for it
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        assert client.exists(RedisKeys(redis_prefix).sending(nid)) == 0
        assert client.hget(RedisKeys(redis_prefix).notification(nid), "status") == "delivered"
    finally:
        client.close()
    # the worker's JSON log lines carry the request's correlation id and the notification id
    lines = [json.loads(x) for x in (tmp_path / "worker.log").read_text().splitlines() if x.startswith("{")]
    delivered = [x for x in lines if x["message"] == "notification delivered"]
    assert delivered and delivered[0]["correlation_id"] == "trace-e2e-1"
    assert delivered[0]["notification_id"] == nid and delivered[0]["service"] == "worker"


async def test_push_end_to_end(stack, tmp_path):
    from tests.support.fcm_server import fcm_server

    with fcm_server(tmp_path) as fcm:
        token = "tok_" + uuid.uuid4().hex * 3
        user = await stack.create_user(push_token=token)
        template = await stack.create_template(
            subject="Order {{ order }} shipped", content="<p>Your order <b>{{ order }}</b> is on its way</p>"
        )
        with worker({**stack.env, **fcm.env}, tmp_path / "worker.log"):
            resp = await stack.send(
                notification_type="push",
                user_id=user["id"],
                template_code=template["code"],
                variables={"order": "A-17", "image": "https://example.com/i.png", "link": "https://example.com/o/A-17"},
                request_id="e2e-push-1",
            )
            assert resp.status == 202, await resp.text()
            nid = (await resp.json())["data"]["notification_id"]
            await wait_status(stack, nid, "delivered")
        [request] = fcm.requests
    message = request["message"]
    assert message["token"] == token
    assert message["notification"]["title"] == "Order A-17 shipped"
    assert message["notification"]["body"] == "Your order A-17 is on its way"
    assert message["notification"]["image"] == "https://example.com/i.png"
    assert message["data"] == {"notification_id": nid, "link": "https://example.com/o/A-17"}


async def test_smtp_bounce_fails_at_once_into_the_dead_letter_queue(stack, smtp, tmp_path):
    smtp.fail_with(550, stage="rcpt")
    user = await stack.create_user()
    template = await stack.create_template()
    depth_before = queue_depth(stack.settings.rabbitmq_url, "failed.queue")
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log"):
        resp = await stack.send(
            notification_type="email",
            user_id=user["id"],
            template_code=template["code"],
            variables={"name": "Ada", "link": "https://example.com"},
            request_id="bounce-1",
        )
        nid = (await resp.json())["data"]["notification_id"]
        note = await wait_status(stack, nid, "failed")
    assert "smtp_5xx" in note["error"]
    assert [a["outcome"] for a in note["attempts"]] == ["failed"] and note["retry_count"] == 0
    assert smtp.messages == []
    assert queue_depth(stack.settings.rabbitmq_url, "failed.queue") == depth_before + 1


async def test_priority_high_is_delivered_first(aiohttp_server, aiohttp_client, env, rabbit_vhost, smtp, tmp_path):
    from tests.support.stack import start_stack

    url, _ = rabbit_vhost
    stack = await start_stack(aiohttp_server, aiohttp_client, {**env, "RABBITMQ_URL": url})
    user = await stack.create_user()
    template = await stack.create_template(subject="{{ label }}", content="<p>{{ label }}</p>")

    async def send(label: str, priority: int):
        resp = await stack.send(
            notification_type="email",
            user_id=user["id"],
            template_code=template["code"],
            variables={"label": label},
            request_id=label,
            priority=priority,
        )
        assert resp.status == 202, await resp.text()

    for i in range(5):
        await send(f"low-{i}", 1)
    await send("high", 10)
    assert queue_depth(url, "email.queue") == 6
    with worker(
        {**stack.env, **smtp.env, "WORKER_PREFETCH_MARGIN": "0"},
        tmp_path / "worker.log",
        queues=("email.queue",),
        threads=1,
    ):
        mails = await wait_mail(smtp, 6)
    subjects = [m.message["Subject"] for m in mails]
    assert subjects[0] == "high", subjects
    assert sorted(subjects[1:]) == [f"low-{i}" for i in range(5)]


async def test_redelivered_message_of_a_delivered_notification_is_not_sent_again(stack, smtp, tmp_path):
    """A message redelivered after delivery (a crash before the ack), or one with no record, is dropped."""
    from dramatiq.message import Message

    from messaging.rabbitmq import HeraldBroker

    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log"):
        resp = await stack.send(
            notification_type="email",
            user_id=user["id"],
            template_code=template["code"],
            variables={"name": "Ada", "link": "https://example.com"},
            request_id="dup-1",
        )
        nid = (await resp.json())["data"]["notification_id"]
        await wait_status(stack, nid, "delivered")
        await wait_mail(smtp, 1)
        # the same message again, as RabbitMQ would redeliver it
        broker = HeraldBroker(url=stack.settings.rabbitmq_url, middleware=[])
        body = {
            "notification_id": nid,
            "notification_type": "email",
            "user_email": user["email"],
            "priority": 5,
            "variables": {"name": "Ada", "link": "https://example.com"},
            "template": {"subject": "x", "content": "y", "language": "en", "version": 1},
        }
        broker.enqueue(
            Message(
                queue_name="email.queue",
                actor_name="send_email",
                args=(body,),
                kwargs={},
                options={"broker_priority": 5},
                message_id=nid,
            )
        )
        # and a message whose notification was never recorded (a publish the gateway answered 503 for)
        ghost = {**body, "notification_id": str(uuid.uuid4())}
        broker.enqueue(
            Message(
                queue_name="email.queue",
                actor_name="send_email",
                args=(ghost,),
                kwargs={},
                options={"broker_priority": 5},
                message_id=ghost["notification_id"],
            )
        )
        broker.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and queue_depth(stack.settings.rabbitmq_url, "email.queue"):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
    assert len(smtp.messages) == 1
    log = (tmp_path / "worker.log").read_text()
    assert "already delivered" in log and "no record of this notification" in log
