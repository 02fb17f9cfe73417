"""Scheduling, expiry, cancelling and batches through the gateway on the real services: what a
caller sees (README, "Scheduling, expiry, cancelling" and "Batches")."""

from __future__ import annotations

import datetime as dt
import uuid

import pika
import redis

from models.redis_keys import RedisKeys
from tests.support.resources import REDIS_URL


def ahead(**delta) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).isoformat()


async def ready(stack):
    user = await stack.create_user()
    template = await stack.create_template()
    return user, template


def request(user, template, **extra) -> dict:
    return {
        "notification_type": "email",
        "user_id": user["id"],
        "template_code": template["code"],
        "variables": {"name": "Ada", "link": "https://example.com"},
        "request_id": uuid.uuid4().hex,
        **extra,
    }


async def status_of(stack, nid: str, token: str | None = None) -> dict:
    resp = await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth(token))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["data"]


def queued(url: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare("email.queue", passive=True).method.message_count
    finally:
        conn.close()


async def test_a_send_due_later_is_recorded_scheduled_and_not_published(stack):
    user, template = await ready(stack)
    before = queued(stack.settings.rabbitmq_url)
    body = request(user, template, send_at=ahead(hours=1), expires_at=ahead(hours=2))
    resp = await stack.client.post("/api/v1/notifications/", json=body, headers=stack.auth())
    assert resp.status == 202, await resp.text()
    data = (await resp.json())["data"]
    assert data["status"] == "scheduled"
    note = await status_of(stack, data["notification_id"])
    assert note["status"] == "scheduled" and note["send_at"].endswith("Z") and note["expires_at"].endswith("Z")
    assert note["mode"] == "live"
    assert queued(stack.settings.rabbitmq_url) == before, "nothing published before its time"
    prefix = stack.env["REDIS_KEY_PREFIX"]
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        assert client.hget(f"{prefix}notification:{data['notification_id']}", "status") == "scheduled"
    finally:
        client.close()
    again = await stack.client.post("/api/v1/notifications/", json=body, headers=stack.auth())
    assert again.status == 200 and (await again.json())["data"] == data, "a replay answers as the first did"
    moved = await stack.client.post(
        "/api/v1/notifications/", json={**body, "send_at": ahead(minutes=90)}, headers=stack.auth()
    )
    assert moved.status == 409, "send_at is part of the body compared for idempotency"
    listed = await stack.client.get("/api/v1/notifications/?status=scheduled", headers=stack.auth())
    assert [n["notification_id"] for n in (await listed.json())["data"]] == [data["notification_id"]]


async def test_schedule_and_expiry_out_of_bounds_are_refused_naming_the_field(stack):
    user, template = await ready(stack)
    cases = {
        "send_at": {"send_at": ahead(days=31)},
        "expires_at": {"expires_at": ahead(seconds=-1)},
    }
    cases_after = {"expires_at": {"send_at": ahead(hours=2), "expires_at": ahead(hours=1)}}
    for field, extra in [*cases.items(), *cases_after.items()]:
        resp = await stack.send(**request(user, template, **extra))
        body = await resp.json()
        assert resp.status == 400 and body["error"] == "VALIDATION_ERROR", body
        assert body["message"].startswith(field), body["message"]
    no_zone = await stack.send(**request(user, template, send_at="2030-01-01T09:00:00"))
    assert no_zone.status == 400


async def test_cancel_while_scheduled_or_pending_then_conflict(stack):
    user, template = await ready(stack)
    scheduled = await stack.send(**request(user, template, send_at=ahead(hours=1)))
    pending = await stack.send(**request(user, template))
    for resp in (scheduled, pending):
        nid = (await resp.json())["data"]["notification_id"]
        token = stack.token(user["id"])  # anyone who may read it may cancel it: here, the user itself
        done = await stack.client.post(f"/api/v1/notifications/{nid}/cancel", headers=stack.auth(token))
        assert done.status == 200, await done.text()
        note = (await done.json())["data"]
        assert note["status"] == "cancelled" and note["error"] and note["attempts"][-1]["outcome"] == "cancelled"
        again = await stack.client.post(f"/api/v1/notifications/{nid}/cancel", headers=stack.auth())
        assert again.status == 409 and (await again.json())["error"] == "CONFLICT"
    stranger = stack.token(str(uuid.uuid4()))
    resp = await stack.client.post(f"/api/v1/notifications/{nid}/cancel", headers=stack.auth(stranger))
    assert resp.status == 404


async def test_a_cancel_meeting_a_worker_that_holds_the_send_claim_changes_nothing(stack):
    user, template = await ready(stack)
    nid = (await (await stack.send(**request(user, template))).json())["data"]["notification_id"]
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    claim = f"{stack.env['REDIS_KEY_PREFIX']}sending:{nid}"
    try:
        client.set(claim, "a-worker", px=60_000)  # a worker is handing it to the provider right now
        resp = await stack.client.post(f"/api/v1/notifications/{nid}/cancel", headers=stack.auth())
        assert resp.status == 409 and "being handed" in (await resp.json())["message"]
        assert (await status_of(stack, nid))["status"] == "pending"
        assert client.get(claim) == "a-worker", "the worker's claim is left alone"
    finally:
        client.close()


async def test_a_batch_judges_each_item_as_if_alone_in_request_order(stack):
    user, template = await ready(stack)
    first = request(user, template)
    await stack.send(**first)
    items = [
        request(user, template),  # accepted
        {**request(user, template), "priority": 11},  # its own 400
        first,  # a replay: 200 with the first answer
        {**request(user, template), "template_code": "no-such-template"},  # 404
        request(user, template, send_at=ahead(hours=1)),  # scheduled
        "not an object",
    ]
    resp = await stack.client.post("/api/v1/notifications/batch", json={"notifications": items}, headers=stack.auth())
    assert resp.status == 200, await resp.text()
    results = (await resp.json())["data"]["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status_code"] for r in results] == [202, 400, 200, 404, 202, 400]
    assert results[1]["error"] == "VALIDATION_ERROR" and results[1]["message"].startswith("priority")
    assert results[3]["error"] == "NOT_FOUND" and results[0]["data"]["status"] == "pending"
    assert results[4]["data"]["status"] == "scheduled"
    again = await stack.client.post(
        "/api/v1/notifications/batch", json={"notifications": items[:1]}, headers=stack.auth()
    )
    assert (await again.json())["data"]["results"][0]["status_code"] == 200, "idempotency holds per item"


async def test_only_a_malformed_envelope_refuses_the_whole_batch(stack):
    user, template = await ready(stack)
    for body in ({"notifications": []}, {"notifications": [request(user, template)] * 1001}, {"items": []}, []):
        resp = await stack.client.post("/api/v1/notifications/batch", json=body, headers=stack.auth())
        assert resp.status == 400, body if isinstance(body, list) else list(body)
    resp = await stack.client.post("/api/v1/notifications/batch", json={"notifications": [request(user, template)]})
    assert resp.status == 401


async def test_a_full_batch_of_1000_is_accepted_and_recorded_once_each(aiohttp_server, aiohttp_client, env):
    from tests.support.stack import start_stack

    stack = await start_stack(aiohttp_server, aiohttp_client, {**env, "RATE_LIMIT_PER_HOUR": "1000"})
    user, template = await ready(stack)
    before = queued(stack.settings.rabbitmq_url)
    items = [request(user, template, priority=1 + i % 10) for i in range(1000)]
    resp = await stack.client.post("/api/v1/notifications/batch", json={"notifications": items}, headers=stack.auth())
    assert resp.status == 200, await resp.text()
    results = (await resp.json())["data"]["results"]
    assert [r["status_code"] for r in results] == [202] * 1000, {
        r["message"] for r in results if r["status_code"] != 202
    }
    ids = {r["data"]["notification_id"] for r in results}
    assert len(ids) == 1000
    assert queued(stack.settings.rabbitmq_url) == before + 1000, "each item published once"
    listed = await stack.client.get(f"/api/v1/notifications/?user_id={user['id']}&limit=100", headers=stack.auth())
    assert listed.status == 200


async def test_a_batch_takes_rate_slots_in_request_order_and_gives_back_the_refused_ones(
    aiohttp_server, aiohttp_client, env
):
    """Slots of one user and channel are taken for the whole batch at once, yet numbered as sends
    one after another: the first ones within the limit pass, the rest are 429, and only accepted
    sends stay counted. The items are concurrent sends, so an item refused for another reason (the
    404) holds its slot while the later items are judged, as a concurrent single send would."""
    from tests.support.stack import start_stack

    stack = await start_stack(aiohttp_server, aiohttp_client, {**env, "RATE_LIMIT_PER_HOUR": "3"})
    (alice, template), bob = await ready(stack), await stack.create_user()
    await stack.send(**request(alice, template))  # one slot of Alice's already taken
    items = [request(alice, template), request(bob, template), request(alice, template), request(alice, template)]
    items.insert(2, {**request(alice, template), "template_code": "no-such-template"})  # refused first: 404
    resp = await stack.client.post("/api/v1/notifications/batch", json={"notifications": items}, headers=stack.auth())
    results = (await resp.json())["data"]["results"]
    assert [r["status_code"] for r in results] == [202, 202, 404, 429, 429]
    assert results[3]["error"] == "RATE_LIMITED" and int(results[3]["message"].split()[2]) == 3
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = RedisKeys(stack.env["REDIS_KEY_PREFIX"])
        assert int(client.get(keys.rate_limit(alice["id"], "email"))) == 2, "refused sends give their slots back"
        assert int(client.get(keys.rate_limit(bob["id"], "email"))) == 1
    finally:
        client.close()
