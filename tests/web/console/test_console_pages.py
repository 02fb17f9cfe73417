"""The console's overview, notification and dead-letter pages on the real gateway, services,
PostgreSQL, Redis and RabbitMQ, read as a browser without JavaScript reads them."""

from __future__ import annotations

import html
import logging
import re
import uuid

import pytest

from tests.conftest import make_env
from tests.support.console import (
    create_admin,
    dead_letter_all,
    page,
    post_form,
    queue_depth,
    record,
    send,
    sign_in,
)


@pytest.fixture
def env(database_url, redis_prefix, rabbit_vhost):
    url, _ = rabbit_vhost  # a vhost of its own: the queue depths and failed.queue are this test's
    return make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url)


@pytest.fixture
async def admin(stack):
    admin = await create_admin(stack)
    resp = await sign_in(stack.client, admin.email, admin.password)
    assert resp.status == 303
    return admin


def cell(text: str, channel: str, column: str) -> int:
    row = re.search(rf'<tr data-channel="{channel}">(.*?)</tr>', text, re.S).group(1)
    return int(re.search(rf'data-count="{column}"[^>]*>(\d+)<', row).group(1))


async def test_the_overview_counts_the_last_hour_and_reads_queues_breakers_and_latency(stack, admin):
    ada = await stack.create_user()
    template = await stack.create_template()
    failed = [await send(stack, ada, template) for _ in range(2)]
    dead_letter_all(stack.settings.rabbitmq_url)
    delivered = [await send(stack, ada, template) for _ in range(3)]
    refused = await stack.send(
        notification_type="push", user_id=ada["id"], template_code=template["code"], request_id="no-token"
    )
    assert refused.status == 400, "no push token: refused, so not counted"
    for nid in failed:
        await record(stack, nid, outcome="failed", status="failed", error="smtp_5xx: 550")
    await record(stack, delivered[0], outcome="delivered", status="delivered")

    text = await page(stack.client, "/admin/")
    assert (cell(text, "email", "accepted"), cell(text, "email", "delivered")) == (5, 1)
    assert (cell(text, "email", "failed"), cell(text, "email", "pending")) == (2, 2)
    assert cell(text, "push", "accepted") == 0
    assert re.search(r'data-queue="email.queue">3<', text) and re.search(r'data-queue="failed.queue">2<', text)
    assert re.search(r'data-queue="push.queue">0<', text)
    assert 'data-breaker="smtp">CLOSED<' in text and 'data-breaker="fcm">CLOSED<' in text
    assert re.search(r"data-p95>\d+ ms<", text) and "6 sends in the last" in text
    assert "<svg" in text and text.count('class="bar-') >= 3 and "UTC" in text
    assert 'data-refresh-url="/admin/overview/live"' in text and 'src="/admin/static/console.js"' in text
    assert "http://" not in text.replace(str(stack.client.make_url("")), ""), "nothing loaded from elsewhere"

    live = await page(stack.client, "/admin/overview/live")
    assert "<nav" not in live and cell(live, "email", "accepted") == 5


async def test_an_open_breaker_is_shown_as_needing_attention(stack, admin):
    import redis

    from tests.support import resources

    client = redis.Redis.from_url(resources.REDIS_URL)
    client.hset(stack.settings.redis_key_prefix + "circuit:fcm", mapping={"state": "OPEN", "failure_count": "5"})
    client.close()
    text = await page(stack.client, "/admin/")
    assert 'data-breaker="fcm">OPEN<' in text and "Needs attention" in text


async def test_search_finds_by_notification_id_request_id_user_id_and_email(stack, admin):
    ada, bob = await stack.create_user(), await stack.create_user()
    template = await stack.create_template()
    mine = [await send(stack, ada, template, request_id=f"order-{i}") for i in range(3)]
    theirs = await send(stack, bob, template, request_id="order-bob")

    def found(text: str) -> list[str]:
        return re.findall(r'href="/admin/notifications/([0-9a-f-]{36})"', text)

    assert found(await page(stack.client, f"/admin/notifications?q={mine[1]}")) == [mine[1]]
    assert found(await page(stack.client, "/admin/notifications?q=order-bob")) == [theirs]
    assert sorted(found(await page(stack.client, f"/admin/notifications?q={ada['id']}"))) == sorted(mine)
    by_email = await page(stack.client, f"/admin/notifications?q={ada['email'].upper()}")
    assert sorted(found(by_email)) == sorted(mine)
    assert found(await page(stack.client, "/admin/notifications?q=nobody@example.com")) == []
    assert "No user has the e-mail address nobody@example.com." in await page(
        stack.client, "/admin/notifications?q=nobody@example.com"
    )
    assert len(found(await page(stack.client, "/admin/notifications"))) == 4
    await record(stack, mine[0], outcome="delivered", status="delivered")
    assert found(await page(stack.client, "/admin/notifications?status=delivered")) == [mine[0]]
    assert found(await page(stack.client, "/admin/notifications?channel=push")) == []
    assert found(await page(stack.client, "/admin/notifications?q=%00x")) == []
    text = await page(stack.client, "/admin/notifications")
    assert '<label for="q">Search</label>' in text and '<label for="status">Status</label>' in text


async def test_search_pages_through_results(stack, admin):
    ada = await stack.create_user()
    template = await stack.create_template()
    sent = {await send(stack, ada, template) for _ in range(27)}
    first = await page(stack.client, "/admin/notifications")
    second = await page(stack.client, "/admin/notifications?page=2")
    ids = re.findall(r'href="/admin/notifications/([0-9a-f-]{36})"', first + second)
    assert set(ids) == sent and len(ids) == 27
    assert "Page 1 of 2 (27 in all)" in first and 'rel="next"' in first and 'rel="prev"' in second


async def test_a_notification_shows_status_correlation_id_user_template_version_and_timeline(stack, admin):
    ada = await stack.create_user(name="Ada <Lovelace>")
    template = await stack.create_template()
    nid = await send(stack, ada, template, correlation_id="trace-abc-123")
    await record(stack, nid, outcome="retry_scheduled", error="smtp_4xx: 451 try later")
    await record(stack, nid, outcome="failed", status="failed", error="smtp_5xx: 550 <no such user>")
    text = await page(stack.client, f"/admin/notifications/{nid}")
    assert "data-status>failed<" in text
    assert "data-correlation>trace-abc-123<" in text
    assert "Ada &lt;Lovelace&gt;" in text and ada["email"] in text, "escaped, never raw HTML"
    assert f'href="/admin/templates/{template["code"]}?language=en"' in text
    assert "data-template-version>1<" in text
    timeline = text[text.index("Timeline") :]
    assert timeline.index("accepted") < timeline.index("retry_scheduled") < timeline.index(">failed<")
    assert "smtp_4xx: 451 try later" in timeline and "smtp_5xx: 550 &lt;no such user&gt;" in timeline
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", timeline)
    assert "dead-letter queue" in text
    await page(stack.client, f"/admin/notifications/{uuid.uuid4()}", status=404)
    await page(stack.client, "/admin/notifications/" + "x" * 80, status=404)


async def test_dead_letters_are_listed_and_replayed_one_and_all(stack, admin, caplog):
    url = stack.settings.rabbitmq_url
    ada = await stack.create_user()
    template = await stack.create_template()
    ids = [await send(stack, ada, template) for _ in range(3)]
    dead_letter_all(url)
    for nid in ids:
        await record(stack, nid, outcome="failed", status="failed", error="smtp_5xx: 550 mailbox unavailable")
    text = await page(stack.client, "/admin/dead-letters")
    assert re.findall(r'data-dead-letter="([0-9a-f-]{36})"', text) == ids
    assert "smtp_5xx: 550 mailbox unavailable" in text and ">Replay all</button>" in text and "Purge" in text

    caplog.set_level(logging.INFO, logger="web.console.pages")
    resp = await post_form(stack.client, f"/admin/dead-letters/{ids[1]}/replay", from_page="/admin/dead-letters")
    assert resp.status == 303 and resp.headers["Location"] == "/admin/dead-letters"
    after = await page(stack.client, "/admin/dead-letters")
    assert f"{ids[1]} replayed: back on its queue with a fresh retry budget." in html.unescape(after)
    assert re.findall(r'data-dead-letter="([0-9a-f-]{36})"', after) == [ids[0], ids[2]]
    assert queue_depth(url, "failed.queue") == 2 and queue_depth(url, "email.queue") == 1
    assert "data-status>pending<" in await page(stack.client, f"/admin/notifications/{ids[1]}")
    [line] = [r for r in caplog.records if getattr(r, "action", "") == "dead letter replayed"]
    assert line.admin_id == admin.id and line.notification_id == ids[1] and line.correlation_id

    resp = await post_form(stack.client, "/admin/dead-letters/replay-all", from_page="/admin/dead-letters")
    assert resp.status == 303
    assert "Replay all: 2 replayed." in await page(stack.client, "/admin/dead-letters")
    assert queue_depth(url, "failed.queue") == 0 and queue_depth(url, "email.queue") == 3


async def test_purge_asks_first_then_empties_the_queue(stack, admin):
    url = stack.settings.rabbitmq_url
    ada = await stack.create_user()
    template = await stack.create_template()
    for _ in range(2):
        await send(stack, ada, template)
    dead_letter_all(url)
    confirm = await page(stack.client, "/admin/dead-letters/purge")
    assert "<strong>2</strong> dead letter(s)" in confirm and ">Purge</button>" in confirm
    unconfirmed = await post_form(stack.client, "/admin/dead-letters/purge", from_page="/admin/dead-letters/purge")
    assert unconfirmed.headers["Location"] == "/admin/dead-letters/purge" and queue_depth(url, "failed.queue") == 2
    resp = await post_form(
        stack.client, "/admin/dead-letters/purge", {"confirm": "yes"}, from_page="/admin/dead-letters/purge"
    )
    assert resp.status == 303 and queue_depth(url, "failed.queue") == 0
    assert "Purged 2 dead letter(s)" in await page(stack.client, "/admin/dead-letters")
