"""Driving the operator console over HTTP as a browser without JavaScript would: read a form's
CSRF token from the page, post the form, follow the answer."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

ADMIN_PASSWORD = "console-admin-pass-1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    match = CSRF_RE.search(page)
    assert match, "the page has no form with a CSRF token"
    return html.unescape(match.group(1))


@dataclass
class Admin:
    id: str
    email: str
    password: str


async def create_admin(stack, **overrides) -> Admin:
    fields = {"role": "admin", "password": ADMIN_PASSWORD, "name": "Olive Operator", **overrides}
    user = await stack.create_user(**fields)
    return Admin(id=user["id"], email=user["email"], password=ADMIN_PASSWORD)


async def sign_in(client, email: str, password: str, *, next_path: str = "/admin/"):
    """Open the sign-in form and post it; the answer (not followed)."""
    form = await client.get("/admin/login")
    assert form.status == 200, await form.text()
    token = csrf_of(await form.text())
    return await client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": token, "next": next_path},
        allow_redirects=False,
    )


async def page(client, path: str, status: int = 200) -> str:
    resp = await client.get(path, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, (resp.status, text[:2000])
    return text


async def post_form(client, path: str, data: dict | None = None, *, from_page: str | None = None):
    """Post a form with the CSRF token of ``from_page`` (read first); the answer, not followed."""
    token = csrf_of(await page(client, from_page or "/admin/"))
    return await client.post(path, data={**(data or {}), "csrf_token": token}, allow_redirects=False)


def dead_letter_all(amqp_url: str, queue: str = "email.queue") -> list[str]:
    """Reject every message of ``queue`` without requeue, as a worker's final failure does: RabbitMQ
    moves them to failed.queue. The notification ids, in order."""
    import json

    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        out = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return out
            out.append(json.loads(body)["args"][0]["notification_id"])
            channel.basic_reject(method.delivery_tag, requeue=False)
    finally:
        connection.close()


async def send(
    stack, user: dict, template: dict, *, channel: str = "email", correlation_id: str | None = None, **extra
):
    """One accepted send; its notification id."""
    import uuid

    headers = stack.auth()
    if correlation_id:
        headers["X-Correlation-ID"] = correlation_id
    body = {
        "notification_type": channel,
        "user_id": user["id"],
        "template_code": template["code"],
        "variables": {"name": user["name"], "link": "https://example.com/welcome"},
        "request_id": extra.pop("request_id", f"req-{uuid.uuid4().hex[:10]}"),
        **extra,
    }
    resp = await stack.client.post("/api/v1/notifications/", json=body, headers=headers)
    assert resp.status == 202, await resp.text()
    return (await resp.json())["data"]["notification_id"]


async def record(stack, nid: str, *, outcome: str, status: str | None = None, error: str | None = None) -> None:
    """A worker's write of an attempt (the same DAO call the worker's status writer makes)."""
    from models.dao import notifications as dao
    from web.common.app import in_db

    row = await in_db(stack.client.app, dao.record_attempt, nid, outcome=outcome, status=status, error=error)
    assert row is not None


def queue_depth(amqp_url: str, queue: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue=queue, passive=True).method.message_count
    finally:
        connection.close()
