"""Dead letters made for real (a worker meets an SMTP server answering 550), then worked by an
operator through the API and ``python -m scripts.dlq``: listed, shown, replayed after the server
recovers (delivered, same notification id), purged."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from tests.e2e.test_delivery import queue_depth, wait_mail, wait_status
from tests.support.processes import run_dlq, worker
from tests.support.smtp_server import smtp_server


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


async def dlq(stack, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(run_dlq, stack.env, *args)


async def bounce(stack, user, template, request_id: str) -> str:
    resp = await stack.send(
        notification_type="email",
        user_id=user["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id=request_id,
    )
    assert resp.status == 202, await resp.text()
    nid = (await resp.json())["data"]["notification_id"]
    await wait_status(stack, nid, "failed")
    return nid


async def wait_depth(url: str, queue: str, wanted: int, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.2)):
        if queue_depth(url, queue) == wanted:
            return
        await asyncio.sleep(0.2)
    assert queue_depth(url, queue) == wanted


async def test_bounce_is_listed_then_replayed_through_the_api_and_delivered(stack, smtp, tmp_path):
    url = stack.settings.rabbitmq_url
    smtp.fail_with(550, stage="rcpt")
    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log"):
        nid = await bounce(stack, user, template, "dlq-api-1")
        await wait_depth(url, "failed.queue", 1)

        resp = await stack.client.get("/api/v1/dead-letters/", headers=stack.auth())
        body = await resp.json()
        assert resp.status == 200 and body["meta"]["total"] == 1
        [item] = body["data"]
        assert item["notification_id"] == nid and item["notification_type"] == "email"
        assert "smtp_5xx" in item["error"] and item["retry_count"] == 0 and item["failed_at"].endswith("Z")

        listed = await dlq(stack, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [line] = [json.loads(x) for x in listed.stdout.splitlines()]
        assert line["notification_id"] == nid and "smtp_5xx" in line["error"]
        shown = await dlq(stack, "show", nid)
        assert shown.returncode == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert detail["x_death"]["queue"] == "email.queue" and detail["x_death"]["reason"] == "rejected"
        assert detail["notification"]["request_id"] == "dlq-api-1"
        assert queue_depth(url, "failed.queue") == 1, "list and show leave the dead letter in place"

        smtp.clear_failure()
        resp = await stack.client.post(f"/api/v1/dead-letters/{nid}/replay", headers=stack.auth())
        assert resp.status == 200, await resp.text()
        [mail] = await wait_mail(smtp, 1)
        note = await wait_status(stack, nid, "delivered")
    assert mail.rcpt_tos == [user["email"]]
    assert mail.message["X-Herald-Notification-ID"] == nid
    assert note["notification_id"] == nid and note["request_id"] == "dlq-api-1"
    assert [a["outcome"] for a in note["attempts"]] == ["failed", "replayed", "delivered"]
    assert queue_depth(url, "failed.queue") == 0
    resp = await stack.client.post(f"/api/v1/dead-letters/{nid}/replay", headers=stack.auth())
    assert resp.status == 404


async def test_cli_replays_by_id_and_all_and_purges(stack, smtp, tmp_path):
    url = stack.settings.rabbitmq_url
    smtp.fail_with(550, stage="rcpt")
    user = await stack.create_user()
    template = await stack.create_template()
    with worker({**stack.env, **smtp.env}, tmp_path / "worker.log"):
        ids = [await bounce(stack, user, template, f"dlq-cli-{i}") for i in range(3)]
        await wait_depth(url, "failed.queue", 3)
        table = await dlq(stack, "list")
        assert table.returncode == 0 and "3 shown of 3 in failed.queue" in table.stdout
        assert all(nid in table.stdout for nid in ids)
        unknown = await dlq(stack, "replay", "--id", "no-such-id")
        assert unknown.returncode == 1 and "no dead letter" in unknown.stderr

        smtp.clear_failure()
        one = await dlq(stack, "replay", "--id", ids[0])
        assert one.returncode == 0 and f"{ids[0]}: replayed" in one.stdout
        await wait_status(stack, ids[0], "delivered")
        refused = await dlq(stack, "purge")
        assert refused.returncode == 2 and "--yes" in refused.stderr
        assert queue_depth(url, "failed.queue") == 2
        everything = await dlq(stack, "replay", "--all")
        assert everything.returncode == 0 and "replayed: 2" in everything.stdout, everything.stdout
        for nid in ids[1:]:
            await wait_status(stack, nid, "delivered")
        await wait_mail(smtp, 3)

        smtp.fail_with(550, stage="rcpt")
        doomed = await bounce(stack, user, template, "dlq-cli-doomed")
        await wait_depth(url, "failed.queue", 1)
        purged = await dlq(stack, "purge", "--yes")
        assert purged.returncode == 0 and "purged 1" in purged.stdout
    assert queue_depth(url, "failed.queue") == 0
    assert len(smtp.messages) == 3, "each replayed notification was sent exactly once"
    note = (await (await stack.client.get(f"/api/v1/notifications/{doomed}", headers=stack.auth())).json())["data"]
    assert note["status"] == "failed", "a purge leaves the notification failed"
