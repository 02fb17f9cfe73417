"""The admin dead-letter endpoints on a real RabbitMQ vhost: messages are dead-lettered by RabbitMQ
itself (rejected from email.queue without requeue), listed, and replayed with a fresh budget."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import pika
import pytest

from tests.conftest import make_env
from tests.support.processes import run_dlq


@pytest.fixture
def env(database_url, redis_prefix, rabbit_vhost):
    url, _ = rabbit_vhost
    return make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url)


def channel_of(url: str):
    conn = pika.BlockingConnection(pika.URLParameters(url))
    return conn, conn.channel()


def depth(url: str, queue: str) -> int:
    conn, ch = channel_of(url)
    try:
        return ch.queue_declare(queue=queue, passive=True).method.message_count
    finally:
        conn.close()


def dead_letter_everything(url: str, queue: str = "email.queue") -> list[dict]:
    """Reject every message of ``queue`` without requeue: RabbitMQ moves them to failed.queue."""
    conn, ch = channel_of(url)
    out = []
    try:
        while True:
            method, _, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                return out
            out.append(json.loads(body))
            ch.basic_reject(method.delivery_tag, requeue=False)
    finally:
        conn.close()


async def send_and_dead_letter(stack, count: int = 1, **extra) -> list[str]:
    user = await stack.create_user()
    template = await stack.create_template()
    ids = []
    for _ in range(count):
        resp = await stack.send(
            notification_type="email",
            user_id=user["id"],
            template_code=template["code"],
            variables={"name": "Ada", "link": "https://example.com"},
            request_id=f"dlq-{uuid.uuid4().hex[:8]}",
            **extra,
        )
        assert resp.status == 202, await resp.text()
        ids.append((await resp.json())["data"]["notification_id"])
    dead_letter_everything(stack.settings.rabbitmq_url)
    return ids


async def receipt(stack, nid: str, status: str, **extra) -> None:
    """Move the notification's status as a provider's receipt does (the worker's write, in effect)."""
    resp = await stack.client.post(
        "/api/v1/email/status/", headers=stack.auth(), json={"notification_id": nid, "status": status, **extra}
    )
    assert resp.status == 200, await resp.text()


async def test_list_shows_dead_letters_paginated_and_leaves_them(stack):
    url = stack.settings.rabbitmq_url
    ids = await send_and_dead_letter(stack, 3)
    assert depth(url, "failed.queue") == 3
    resp = await stack.client.get("/api/v1/dead-letters/?limit=2", headers=stack.auth())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["meta"] == {
        "total": 3,
        "limit": 2,
        "page": 1,
        "total_pages": 2,
        "has_next": True,
        "has_previous": False,
    }
    first = body["data"]
    assert [item["notification_id"] for item in first] == ids[:2]
    item = first[0]
    assert {"notification_id", "notification_type", "error", "retry_count", "failed_at"} <= set(item)
    assert item["notification_type"] == "email" and item["retry_count"] == 0
    assert item["failed_at"].endswith("Z") and item["reason"] == "rejected" and item["queue"] == "email.queue"
    page2 = await (await stack.client.get("/api/v1/dead-letters?limit=2&page=2", headers=stack.auth())).json()
    assert [i["notification_id"] for i in page2["data"]] == ids[2:]
    assert depth(url, "failed.queue") == 3, "listing consumes nothing"


async def test_replay_puts_it_back_with_a_fresh_budget_and_the_same_ids(stack):
    url = stack.settings.rabbitmq_url
    [nid] = await send_and_dead_letter(stack, priority=8)
    await receipt(stack, nid, "failed", error="smtp_5xx: 550 mailbox unavailable")
    listed = (await (await stack.client.get("/api/v1/dead-letters/", headers=stack.auth())).json())["data"]
    assert listed[0]["error"] == "smtp_5xx: 550 mailbox unavailable"

    resp = await stack.client.post(f"/api/v1/dead-letters/{nid}/replay", headers=stack.auth())
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"] == {"notification_id": nid, "outcome": "replayed", "status": "pending"}
    assert depth(url, "failed.queue") == 0
    [message] = dead_letter_everything(url)  # take the re-published message to look at it
    assert message["args"][0]["notification_id"] == nid and message["actor_name"] == "send_email"
    assert message["args"][0]["retry_count"] == 0
    assert set(message["options"]) <= {"broker_priority", "correlation_id"}
    assert message["options"]["broker_priority"] == 8
    note = (await (await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth())).json())["data"]
    assert note["status"] == "pending" and note["error"] is None
    assert [a["outcome"] for a in note["attempts"]] == ["receipt", "replayed"]
    assert note["request_id"].startswith("dlq-")


async def listed_ids(stack) -> list[str]:
    body = await (await stack.client.get("/api/v1/dead-letters/?limit=100", headers=stack.auth())).json()
    return [item["notification_id"] for item in body["data"]]


async def test_replay_by_api_reaches_a_dead_letter_in_the_middle_and_at_the_end(stack):
    url = stack.settings.rabbitmq_url
    ids = await send_and_dead_letter(stack, 4)
    assert await listed_ids(stack) == ids
    for nid in (ids[1], ids[3]):  # the middle one, then the last one
        resp = await stack.client.post(f"/api/v1/dead-letters/{nid}/replay", headers=stack.auth())
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["data"]["outcome"] == "replayed"
    assert await listed_ids(stack) == [ids[0], ids[2]], "the others stay, in their order"
    replayed = dead_letter_everything(url)
    assert [m["args"][0]["notification_id"] for m in replayed] == [ids[1], ids[3]]


async def dlq(stack, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(run_dlq, stack.env, *args)


async def test_show_and_replay_by_cli_reach_a_dead_letter_in_the_middle_and_at_the_end(stack):
    ids = await send_and_dead_letter(stack, 3)
    shown = await dlq(stack, "show", ids[1])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["notification_id"] == ids[1]
    for nid in (ids[1], ids[2]):
        replay = await dlq(stack, "replay", "--id", nid)
        assert replay.returncode == 0 and f"{nid}: replayed" in replay.stdout, replay.stdout + replay.stderr
    assert await listed_ids(stack) == [ids[0]]


async def test_replay_of_a_delivered_notification_only_removes_the_stale_copy(stack):
    [nid] = await send_and_dead_letter(stack)
    await receipt(stack, nid, "delivered")
    resp = await stack.client.post(f"/api/v1/dead-letters/{nid}/replay", headers=stack.auth())
    assert (await resp.json())["data"]["outcome"] == "already_delivered"
    assert depth(stack.settings.rabbitmq_url, "failed.queue") == 0
    assert depth(stack.settings.rabbitmq_url, "email.queue") == 0


async def test_replay_of_an_unknown_id_is_404_and_leaves_the_queue(stack):
    await send_and_dead_letter(stack)
    for nid in (str(uuid.uuid4()), "x" * 65):
        resp = await stack.client.post(f"/api/v1/dead-letters/{nid}/replay", headers=stack.auth())
        assert resp.status == 404
        assert (await resp.json())["error"] == "NOT_FOUND"
    assert depth(stack.settings.rabbitmq_url, "failed.queue") == 1


async def test_admin_only(stack):
    [nid] = await send_and_dead_letter(stack)
    for role in ("user", "service"):
        token = stack.token(str(uuid.uuid4()), role)
        for method, path in (("GET", "/api/v1/dead-letters/"), ("POST", f"/api/v1/dead-letters/{nid}/replay")):
            resp = await stack.client.request(method, path, headers=stack.auth(token))
            assert resp.status == 403, (role, path)
            assert (await resp.json())["error"] == "FORBIDDEN"
    resp = await stack.client.get("/api/v1/dead-letters")
    assert resp.status == 401
    assert depth(stack.settings.rabbitmq_url, "failed.queue") == 1


async def test_bad_paging_is_400(stack):
    resp = await stack.client.get("/api/v1/dead-letters/?limit=0", headers=stack.auth())
    assert resp.status == 400
    resp = await stack.client.get("/api/v1/dead-letters/", headers=stack.auth())
    body = await resp.json()
    assert body["data"] == [] and body["meta"]["total"] == 0
