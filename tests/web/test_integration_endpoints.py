"""API keys and webhooks through the gateway's HTTP API on the real services: created, used,
listed and revoked by an admin; a key sends as a service and reaches the forwarded services; a key
never manages keys or webhooks; an SSRF address is refused."""

from __future__ import annotations

import asyncio
import uuid


async def create_key(stack, **body) -> dict:
    resp = await stack.client.post("/api/v1/api-keys/", json={"name": "billing", **body}, headers=stack.auth())
    assert resp.status == 201, await resp.text()
    return (await resp.json())["data"]


async def test_a_key_is_shown_once_works_as_a_service_token_and_stops_when_revoked(stack):
    made = await create_key(stack)
    key = made["key"]
    assert key.startswith("hk_live_") and made["prefix"] == key[:12]
    listed = await (await stack.client.get("/api/v1/api-keys/", headers=stack.auth())).json()
    assert [k["id"] for k in listed["data"]] == [made["id"]] and "key" not in listed["data"][0]
    user = await stack.create_user()
    template = await stack.create_template()
    send = await stack.send(
        key,
        notification_type="email",
        user_id=user["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id="by-key",
    )
    assert send.status == 202, await send.text()
    nid = (await send.json())["data"]["notification_id"]
    note = await (await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth(key))).json()
    assert note["data"]["mode"] == "live"
    forwarded = await stack.client.get(f"/api/v1/users/{user['id']}", headers=stack.auth(key))
    assert forwarded.status == 200, "a key works on the forwarded services as a service token"
    revoked = await stack.client.delete(f"/api/v1/api-keys/{made['id']}", headers=stack.auth())
    assert revoked.status == 200 and (await revoked.json())["data"]["revoked_at"]
    for _ in range(60):  # refused on this process within 5 s
        resp = await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth(key))
        if resp.status == 401:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 401 and key not in await resp.text()


async def test_a_test_key_records_test_mode(stack):
    key = (await create_key(stack, mode="test"))["key"]
    assert key.startswith("hk_test_")
    user = await stack.create_user()
    template = await stack.create_template()
    send = await stack.send(
        key,
        notification_type="email",
        user_id=user["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id="test-mode",
    )
    nid = (await send.json())["data"]["notification_id"]
    note = await (await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth())).json()
    assert note["data"]["mode"] == "test"


async def test_a_key_never_manages_keys_or_webhooks_and_a_user_token_neither(stack):
    key = (await create_key(stack))["key"]
    user_token = stack.token(str(uuid.uuid4()))
    for token in (key, user_token):
        for method, path, body in (
            ("POST", "/api/v1/api-keys/", {"name": "x"}),
            ("GET", "/api/v1/api-keys/", None),
            ("POST", "/api/v1/webhooks/", {"url": "https://example.com/h"}),
            ("GET", "/api/v1/webhooks/", None),
        ):
            resp = await stack.client.request(method, path, json=body, headers=stack.auth(token))
            assert resp.status == 403, (method, path, await resp.text())


async def test_webhooks_are_managed_by_api_and_ssrf_addresses_refused(stack):
    for url in ("http://169.254.169.254/latest/meta-data", "ftp://example.com/x", "http://localhost:9/x"):
        resp = await stack.client.post("/api/v1/webhooks/", json={"url": url}, headers=stack.auth())
        assert resp.status == 400 and (await resp.json())["error"] == "VALIDATION_ERROR", url
    resp = await stack.client.post(
        "/api/v1/webhooks/",
        json={"url": "https://93.184.215.14/herald", "events": ["notification.failed"]},
        headers=stack.auth(),
    )
    assert resp.status == 201, await resp.text()
    made = (await resp.json())["data"]
    assert made["secret"] and made["events"] == ["notification.failed"]
    got = await (await stack.client.get(f"/api/v1/webhooks/{made['id']}", headers=stack.auth())).json()
    assert "secret" not in got["data"]
    deliveries = await stack.client.get(f"/api/v1/webhooks/{made['id']}/deliveries", headers=stack.auth())
    assert deliveries.status == 200 and (await deliveries.json())["meta"]["total"] == 0
    gone = await stack.client.delete(f"/api/v1/webhooks/{made['id']}", headers=stack.auth())
    assert gone.status == 200
    again = await stack.client.get(f"/api/v1/webhooks/{made['id']}", headers=stack.auth())
    assert again.status == 404
