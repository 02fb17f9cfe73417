"""Sends made with an ``hk_test_`` key go through every check, queue and status, end as the contract
says, and reach neither SMTP nor FCM; a live send beside them does (README, "Test mode")."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from tests.e2e.test_delivery import queue_depth, wait_status
from tests.support.fcm_server import fcm_server
from tests.support.processes import worker
from tests.support.smtp_server import smtp_server
from tests.support.webhook_receiver import start_receiver
from web.common.api_key_auth import for_app
from web.common.auth import Caller
from web.gateway import api_key_service as keys
from web.gateway import webhook_service as hooks
from web.gateway.app_keys import pipeline_key
from web.gateway.schemas import SendRequest

ADMIN = Caller(sub="admin-1", role="admin")


@pytest.fixture
def env(env):
    return {**env, "WEBHOOK_ALLOW_PRIVATE": "true"}


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


async def test_test_mode_sends_reach_no_provider_and_end_as_simulated(stack, smtp, tmp_path, aiohttp_server):
    app = stack.client.app
    receiver = await start_receiver(aiohttp_server)
    subscription = await hooks.create_webhook(app, ADMIN, url=receiver.url("/events"))
    receiver.secrets["/events"] = subscription["secret"]
    # the key, as an application would present it, through the gateway's authenticator
    key = (await keys.create_api_key(app, ADMIN, name="ci", mode="test"))["key"]
    caller = await for_app(app).authenticate(key)
    assert caller.mode == "test" and caller.sub.startswith("apikey:")

    token = "tok_" + uuid.uuid4().hex * 2
    ada = await stack.create_user(push_token=token)
    bounce = await stack.create_user(email="simulate-permanent-failure@herald.test")
    unregistered = await stack.create_user(push_token="simulate-permanent-failure-token")
    template = await stack.create_template()

    async def send(user, channel: str, request_id: str) -> str:
        body = msgspec.convert(
            {
                "notification_type": channel,
                "user_id": user["id"],
                "template_code": template["code"],
                "variables": {"name": "Ada", "link": "https://example.com"},
                "request_id": request_id,
            },
            SendRequest,
        )
        accepted = await app[pipeline_key].send(caller, body, correlation_id=f"corr-{request_id}")
        assert not accepted.replayed
        again = await app[pipeline_key].send(caller, body, correlation_id="corr-again")
        assert again.replayed and again.data == accepted.data, "replays are scoped to the key, as to any caller"
        return accepted.data["notification_id"]

    with fcm_server(tmp_path) as fcm:
        env = {**stack.env, **smtp.env, **fcm.env}
        with worker(env, tmp_path / "worker.log", queues=("email.queue", "push.queue", "webhooks.queue")):
            outcomes = {
                await send(ada, "email", "t-email"): "delivered",
                await send(bounce, "email", "t-bounce"): "failed",
                await send(ada, "push", "t-push"): "delivered",
                await send(unregistered, "push", "t-unregistered"): "failed",
            }
            live = await stack.send(
                notification_type="email",
                user_id=ada["id"],
                template_code=template["code"],
                variables={"name": "Live", "link": "https://example.com"},
                request_id="live-1",
            )
            live_id = (await live.json())["data"]["notification_id"]
            notes = {nid: await wait_status(stack, nid, status) for nid, status in outcomes.items()}
            await wait_status(stack, live_id, "delivered")
            events = await receiver.wait_for(5, "/events")
        assert fcm.requests == [] and fcm.token_requests == [], "test mode never reached FCM"
    # only the live send reached the SMTP server
    assert [m.rcpt_tos for m in smtp.messages] == [[ada["email"]]]
    assert "Live" in smtp.messages[0].message["Subject"]
    for nid, note in notes.items():
        assert note["mode"] == "test"
        if outcomes[nid] == "failed":
            assert "simulated_permanent_failure" in note["error"] and note["retry_count"] == 0
            assert [a["outcome"] for a in note["attempts"]] == ["failed"]
        else:
            assert note["error"] is None and [a["outcome"] for a in note["attempts"]] == ["delivered"]
    resp = await stack.client.get(f"/api/v1/notifications/{live_id}", headers=stack.auth())
    assert (await resp.json())["data"]["mode"] == "live"
    # the simulated failures end like real ones: in failed.queue, and the user's token untouched
    assert queue_depth(stack.settings.rabbitmq_url, "failed.queue") == 2
    resp = await stack.client.get(f"/api/v1/users/{unregistered['id']}", headers=stack.auth())
    assert (await resp.json())["data"]["push_token"] == "simulate-permanent-failure-token"
    # and the application's webhooks saw every outcome, the test ones marked as such
    assert all(hit.verified for hit in events)
    seen = {hit.json["data"]["notification_id"]: hit.json for hit in events}
    assert {nid: e["data"]["mode"] for nid, e in seen.items()} == {**dict.fromkeys(outcomes, "test"), live_id: "live"}
    assert {nid: seen[nid]["type"] for nid in outcomes} == {nid: f"notification.{s}" for nid, s in outcomes.items()}
