"""The broker declares exactly Herald's topology (README, "Deploying"), read back from RabbitMQ itself."""

from __future__ import annotations

import json

import pika

from messaging.rabbitmq import HeraldBroker
from tests.support.resources import declare_topology, rabbitmqctl

DELIVERY_ARGS = {
    "x-max-priority": 10,
    "x-message-ttl": 86400000,
    "x-max-length": 100000,
    "x-overflow": "reject-publish",
    "x-dead-letter-exchange": "notifications.direct",
    "x-dead-letter-routing-key": "failed",
}


def _queues(vhost: str) -> dict[str, dict]:
    out = rabbitmqctl("list_queues", "-p", vhost, "--formatter", "json", "name", "durable", "arguments")
    return {q["name"]: q for q in json.loads(out)}


def _args(queue: dict) -> dict:
    args = queue["arguments"]
    # rabbitmqctl 3.10 prints arguments as [name, type, value] triples
    return {name: value for name, _type, value in args} if isinstance(args, list) else args


def test_topology_is_the_contracts(rabbit_vhost):
    url, vhost = rabbit_vhost
    declare_topology(url)
    queues = _queues(vhost)
    for name in ("email.queue", "push.queue"):
        assert queues[name]["durable"] is True
        assert _args(queues[name]) == DELIVERY_ARGS, name
    assert _args(queues["failed.queue"]) == {} and queues["failed.queue"]["durable"] is True
    assert _args(queues["maintenance.queue"]) == {} and queues["maintenance.queue"]["durable"] is True
    assert _args(queues["webhooks.queue"]) == {} and queues["webhooks.queue"]["durable"] is True
    for dq in ("email.queue.DQ", "push.queue.DQ"):
        assert "x-message-ttl" not in _args(queues[dq]) and "x-max-length" not in _args(queues[dq])
    # a webhook waiting out its backoff never dead-letters into the notifications' failed.queue
    assert _args(queues["webhooks.queue.DQ"]) == {}
    assert not [q for q in queues if q.endswith(".XQ")]

    exchanges = json.loads(rabbitmqctl("list_exchanges", "-p", vhost, "--formatter", "json", "name", "type", "durable"))
    direct = next(e for e in exchanges if e["name"] == "notifications.direct")
    assert direct["type"] == "direct" and direct["durable"] is True

    bindings = json.loads(
        rabbitmqctl(
            "list_bindings", "-p", vhost, "--formatter", "json", "source_name", "destination_name", "routing_key"
        )
    )
    ours = {(b["destination_name"], b["routing_key"]) for b in bindings if b["source_name"] == "notifications.direct"}
    assert ours == {
        ("email.queue", "email"),
        ("push.queue", "push"),
        ("failed.queue", "failed"),
        ("webhooks.queue", "webhooks"),
    }


def test_declaring_twice_is_harmless(rabbit_vhost):
    url, _ = rabbit_vhost
    for _ in range(2):
        declare_topology(url)


def test_published_message_carries_the_contract_properties(rabbit_vhost):
    from dramatiq.message import Message

    url, _ = rabbit_vhost
    broker = HeraldBroker(url=url, middleware=[])
    try:
        broker.declare_topology()
        body = {"notification_id": "n-1", "priority": 9}
        broker.enqueue(
            Message(
                queue_name="email.queue",
                actor_name="send_email",
                args=(body,),
                kwargs={},
                options={"broker_priority": 9, "correlation_id": "corr-1"},
                message_id="n-1",
            )
        )
    finally:
        broker.close()
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        method, props, raw = conn.channel().basic_get("email.queue", auto_ack=True)
    finally:
        conn.close()
    assert method.routing_key == "email" and method.exchange == "notifications.direct"
    assert props.delivery_mode == 2 and props.priority == 9 and props.correlation_id == "corr-1"
    assert props.message_id == "n-1" and props.content_type == "application/json" and props.timestamp > 0
    assert json.loads(raw)["args"][0] == body
