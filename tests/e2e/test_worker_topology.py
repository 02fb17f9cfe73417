"""A worker declares Herald's whole topology when it starts, whatever queues it consumes."""

from __future__ import annotations

import json

from tests.support.processes import wait_for, worker
from tests.support.resources import rabbitmqctl


def _queues(vhost: str) -> set[str]:
    return {q["name"] for q in json.loads(rabbitmqctl("list_queues", "-p", vhost, "--formatter", "json", "name"))}


def test_email_worker_declares_every_queue(env, rabbit_vhost, tmp_path):
    _, vhost = rabbit_vhost
    assert _queues(vhost) == set()
    with worker(env, tmp_path / "worker.log", queues=("email.queue",)):
        wanted = {"email.queue", "push.queue", "failed.queue", "maintenance.queue", "webhooks.queue"}
        wait_for(lambda: wanted <= _queues(vhost), timeout=30, interval=0.5, what="the whole topology")
