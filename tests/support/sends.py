"""Sends and what they left behind, read back from RabbitMQ and the gateway's API."""

from __future__ import annotations

import json
import uuid

import pika


def send_body(user: dict, template: dict, request_id: str | None = None) -> dict:
    return {
        "notification_type": "email",
        "user_id": user["id"],
        "template_code": template["code"],
        "variables": {"name": "Ada", "link": "https://example.com/x"},
        "request_id": request_id or uuid.uuid4().hex,
    }


def drain_queue(amqp_url: str, queue: str = "email.queue") -> list[str]:
    """The message ids on ``queue``, taken off it."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        ids = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return ids
            assert json.loads(body)["args"][0]["notification_id"] == properties.message_id
            ids.append(properties.message_id)
    finally:
        connection.close()


async def total_for(stack, user: dict) -> int:
    resp = await stack.client.get(f"/api/v1/notifications/?user_id={user['id']}&limit=1", headers=stack.auth())
    assert resp.status == 200
    return (await resp.json())["meta"]["total"]
