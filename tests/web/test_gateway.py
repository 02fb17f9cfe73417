"""The gateway's send path and reads, on the real services (no worker running here)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from tests.conftest import JWT_SECRET


async def _body(resp):
    body = await resp.json()
    assert set(body) == {"success", "data", "error", "message", "meta"}
    return body


@pytest.fixture
async def ready(stack):
    user = await stack.create_user()
    template = await stack.create_template()
    return stack, user, template


def send_body(user, template, **over):
    body = {
        "notification_type": "email",
        "user_id": user["id"],
        "template_code": template["code"],
        "variables": {"name": "Ada", "link": "https://example.com/x"},
        "request_id": uuid.uuid4().hex,
    }
    body.update(over)
    return body


async def test_send_is_accepted_and_status_is_pending(ready):
    stack, user, template = ready
    resp = await stack.send(**send_body(user, template, priority=7))
    body = await _body(resp)
    assert resp.status == 202, body
    data = body["data"]
    assert data["status"] == "pending" and data["notification_id"]
    assert resp.headers["X-Correlation-ID"]
    got = await stack.client.get(f"/api/v1/notifications/{data['notification_id']}", headers=stack.auth())
    note = (await _body(got))["data"]
    assert got.status == 200
    assert note["status"] == "pending" and note["priority"] == 7 and note["user_id"] == user["id"]
    assert note["retry_count"] == 0 and note["attempts"] == []


async def test_idempotent_replay_and_conflict(ready):
    stack, user, template = ready
    body = send_body(user, template)
    first = await stack.send(**body)
    assert first.status == 202
    again = await stack.send(**{**body, "priority": 5})  # the default, spelled out: same request
    replay = await _body(again)
    assert again.status == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert replay["data"] == (await first.json())["data"]
    changed = await stack.send(**{**body, "variables": {"name": "Eve", "link": "https://example.com/x"}})
    assert changed.status == 409 and (await _body(changed))["error"] == "IDEMPOTENCY_CONFLICT"
    listing = await stack.client.get(f"/api/v1/notifications/?user_id={user['id']}", headers=stack.auth())
    assert (await listing.json())["meta"]["total"] == 1


async def test_same_request_id_from_another_caller_is_a_new_request(ready):
    stack, user, template = ready
    body = send_body(user, template)
    assert (await stack.send(**body)).status == 202
    other = stack.token(str(uuid.uuid4()), "service")
    assert (await stack.send(other, **body)).status == 202


async def test_preference_off_is_refused(ready):
    stack, _, template = ready
    user = await stack.create_user(preferences={"email": False, "push": True})
    resp = await stack.send(**send_body(user, template))
    assert resp.status == 400 and (await _body(resp))["error"] == "PREFERENCE_DISABLED"


async def test_push_without_token_is_a_validation_error(ready):
    stack, user, template = ready
    resp = await stack.send(**send_body(user, template, notification_type="push"))
    body = await _body(resp)
    assert resp.status == 400 and body["error"] == "VALIDATION_ERROR" and "push token" in body["message"]


async def test_unknown_user_and_template_are_404(ready):
    stack, user, template = ready
    resp = await stack.send(**send_body(user, template, user_id=str(uuid.uuid4())))
    assert resp.status == 404 and (await _body(resp))["error"] == "NOT_FOUND"
    resp = await stack.send(**send_body(user, template, template_code="no-such-template"))
    assert resp.status == 404 and (await _body(resp))["error"] == "NOT_FOUND"


async def test_missing_template_variable_is_named(ready):
    stack, user, template = ready
    resp = await stack.send(**send_body(user, template, variables={"link": "https://example.com"}))
    body = await _body(resp)
    assert resp.status == 400 and body["error"] == "VALIDATION_ERROR" and "name" in body["message"]


async def test_rate_limit(aiohttp_server, aiohttp_client, env):
    from tests.support.stack import start_stack

    stack = await start_stack(aiohttp_server, aiohttp_client, {**env, "RATE_LIMIT_PER_HOUR": "3"})
    user, template = await stack.create_user(), await stack.create_template()
    for _ in range(3):
        assert (await stack.send(**send_body(user, template))).status == 202
    resp = await stack.send(**send_body(user, template))
    body = await _body(resp)
    assert resp.status == 429 and body["error"] == "RATE_LIMITED"
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600
    # another user has a budget of their own
    other = await stack.create_user()
    assert (await stack.send(**send_body(other, template))).status == 202


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda b: b.update(priority="high"), "priority"),
        (lambda b: b.update(priority=11), "priority"),
        (lambda b: b.update(notification_type="sms"), "notification_type"),
        (lambda b: b.update(user_id="not-a-uuid"), "user_id"),
        (lambda b: b.update(request_id=""), "request_id"),
        (lambda b: b.update(request_id="x" * 129), "request_id"),
        (lambda b: b.update(variables=[1, 2]), "variables"),
        (lambda b: b.update(variables={"link": "javascript:alert(1)"}), "link"),
        (lambda b: b.update(extra=1), "extra"),
        (lambda b: b.pop("template_code"), "template_code"),
    ],
)
async def test_wrong_types_are_400(ready, mutate, fragment):
    stack, user, template = ready
    body = send_body(user, template)
    mutate(body)
    resp = await stack.send(**body)
    data = await _body(resp)
    assert resp.status == 400 and data["error"] == "VALIDATION_ERROR" and fragment in data["message"]


async def test_malformed_json_and_oversize_body(ready):
    stack, _, _ = ready
    resp = await stack.client.post("/api/v1/notifications/", data=b"{not json", headers=stack.auth())
    assert resp.status == 400 and (await _body(resp))["error"] == "VALIDATION_ERROR"
    resp = await stack.client.post("/api/v1/notifications/", data=b"[1]", headers=stack.auth())
    assert resp.status == 400
    huge = b'{"variables": {"x": "' + b"a" * (1024 * 1024 + 10) + b'"}}'
    resp = await stack.client.post("/api/v1/notifications/", data=huge, headers=stack.auth())
    body = await _body(resp)
    assert resp.status == 413 and body["error"] == "PAYLOAD_TOO_LARGE"
    assert "Traceback" not in body["message"]


def _forge(claims: dict, *, key: str = JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_tokens_missing_expired_wrong_key_and_alg_none(ready):
    stack, user, template = ready
    body = send_body(user, template)
    now = int(time.time())
    good = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iss": "herald",
        "aud": "herald-api",
        "iat": now,
        "exp": now + 60,
    }
    none_token = jwt.encode(good, key=None, algorithm="none") if hasattr(jwt, "encode") else ""
    cases = {
        "missing": None,
        "expired": _forge({**good, "iat": now - 7200, "exp": now - 3600}),
        "wrong key": _forge(good, key="another-secret-0123456789abcdef-0123456789"),
        "alg none": none_token,
        "wrong audience": _forge({**good, "aud": "someone-else"}),
        "wrong issuer": _forge({**good, "iss": "evil"}),
        "no role": _forge({k: v for k, v in good.items() if k != "role"}),
        "garbage": "abc.def.ghi",
    }
    for name, token in cases.items():
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        resp = await stack.client.post("/api/v1/notifications/", json=body, headers=headers)
        data = await _body(resp)
        assert resp.status == 401, name
        assert data["error"] == "UNAUTHORIZED", name
    assert (await stack.send(_forge(good), **body)).status == 202


async def test_user_token_reads_only_its_own_notifications(ready):
    stack, user, template = ready
    other = await stack.create_user()
    accepted = await (await stack.send(**send_body(user, template))).json()
    nid = accepted["data"]["notification_id"]
    mine = stack.token(user["id"])
    theirs = stack.token(other["id"])
    assert (await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth(mine))).status == 200
    resp = await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth(theirs))
    body = await _body(resp)
    assert resp.status == 404 and body["data"] is None
    listing = await stack.client.get("/api/v1/notifications", headers=stack.auth(theirs))
    assert (await listing.json())["meta"]["total"] == 0
    resp = await stack.client.get(f"/api/v1/notifications?user_id={user['id']}", headers=stack.auth(theirs))
    assert resp.status == 403
    # a user token may not send to another user either
    assert (await stack.send(theirs, **send_body(user, template))).status == 403


async def test_list_is_paginated_and_filtered(ready):
    stack, user, template = ready
    for _ in range(3):
        assert (await stack.send(**send_body(user, template))).status == 202
    resp = await stack.client.get(
        f"/api/v1/notifications/?user_id={user['id']}&limit=2&page=1&status=pending", headers=stack.auth()
    )
    body = await _body(resp)
    assert body["meta"] == {
        "total": 3,
        "limit": 2,
        "page": 1,
        "total_pages": 2,
        "has_next": True,
        "has_previous": False,
    }
    assert len(body["data"]) == 2
    resp = await stack.client.get("/api/v1/notifications?status=delivered&user_id=" + user["id"], headers=stack.auth())
    assert (await resp.json())["meta"]["total"] == 0
    resp = await stack.client.get("/api/v1/notifications?status=bogus", headers=stack.auth())
    assert resp.status == 400


async def test_provider_receipt_marks_a_bounce(ready):
    stack, user, template = ready
    nid = (await (await stack.send(**send_body(user, template))).json())["data"]["notification_id"]
    user_token = stack.token(user["id"])
    receipt = {
        "notification_id": nid,
        "status": "failed",
        "error": "550 mailbox unavailable",
        "timestamp": "2026-11-26T10:00:00Z",
    }
    resp = await stack.client.post("/api/v1/email/status/", json=receipt, headers=stack.auth(user_token))
    assert resp.status == 403
    resp = await stack.client.post("/api/v1/push/status", json=receipt, headers=stack.auth())
    assert resp.status == 404
    resp = await stack.client.post("/api/v1/email/status", json=receipt, headers=stack.auth())
    data = (await _body(resp))["data"]
    assert resp.status == 200 and data["status"] == "failed" and data["error"] == "550 mailbox unavailable"
    got = await (await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth())).json()
    assert got["data"]["status"] == "failed"


async def test_forwarding_reaches_the_services(ready):
    stack, user, _ = ready
    resp = await stack.client.post("/api/v1/auth/login", json={"email": user["email"], "password": "correct-horse-1"})
    token = (await _body(resp))["data"]["access_token"]
    resp = await stack.client.get(f"/api/v1/users/{user['id']}", headers=stack.auth(token))
    assert resp.status == 200 and (await resp.json())["data"]["email"] == user["email"]
    resp = await stack.client.get("/api/v1/templates", headers=stack.auth(token))
    assert resp.status == 200 and (await resp.json())["meta"]["total"] == 1
    resp = await stack.client.get("/api/v1/users/", headers={**stack.auth(), "X-Correlation-ID": "corr-123"})
    assert resp.status == 200 and resp.headers["X-Correlation-ID"] == "corr-123"


async def test_health_reports_every_dependency(ready):
    stack, _, _ = ready
    resp = await stack.client.get("/health")
    body = await _body(resp)
    assert resp.status == 200, body
    assert body["data"] == {
        "status": "ok",
        "checks": {"redis": "ok", "rabbitmq": "ok", "users": "ok", "templates": "ok"},
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100000 + b"]" * 100000,
        b'{"request_id": NaN}',
        b'{"request_id": Infinity}',
        b'{"notification_type": "email", "metadata": {"x": "a\\u0000b"}}',
    ],
    ids=["deeply nested", "NaN", "Infinity", "NUL"],
)
async def test_hostile_json_is_a_400_not_a_500(ready, raw):
    stack, _, _ = ready
    resp = await stack.client.post("/api/v1/notifications/", data=raw, headers=stack.auth())
    body = await _body(resp)
    assert resp.status == 400 and body["error"] == "VALIDATION_ERROR", body


async def test_receipt_with_an_out_of_range_timestamp_is_a_400(ready):
    stack, user, template = ready
    nid = (await (await stack.send(**send_body(user, template))).json())["data"]["notification_id"]
    receipt = {"notification_id": nid, "status": "delivered", "timestamp": "0001-01-01T00:00:00+05:00"}
    resp = await stack.client.post("/api/v1/email/status/", json=receipt, headers=stack.auth())
    assert resp.status == 400 and (await _body(resp))["error"] == "VALIDATION_ERROR"


async def test_concurrent_repeats_of_one_request_all_get_its_result(ready):
    import asyncio

    stack, user, template = ready
    body = send_body(user, template)
    responses = await asyncio.gather(*(stack.send(**body) for _ in range(5)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 200, 200, 200, 202], statuses
    ids = {(await r.json())["data"]["notification_id"] for r in responses}
    assert len(ids) == 1


async def test_refused_requests_do_not_use_up_the_rate_limit(aiohttp_server, aiohttp_client, env):
    import asyncio

    from tests.support.stack import start_stack

    stack = await start_stack(aiohttp_server, aiohttp_client, {**env, "RATE_LIMIT_PER_HOUR": "2"})
    user, template = await stack.create_user(), await stack.create_template()
    refused = await asyncio.gather(
        *(stack.send(**send_body(user, template, template_code="missing")) for _ in range(10))
    )
    assert {r.status for r in refused} == {404}
    assert [(await stack.send(**send_body(user, template))).status for _ in range(3)] == [202, 202, 429]
