"""A real ``dramatiq actors`` worker serves Herald's delivery metrics on its Prometheus port.

This is prometheus-client's multiprocess trap under test (README, "The multiprocess directory"): the
values are written by the worker process and served by dramatiq's separate exposition process, so
they only show up when the multiprocess directory is set before the worker starts, as the
deployment does.
"""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from tests.support.ports import free_port
from tests.support.processes import worker
from tests.support.smtp_server import smtp_server


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels`` (in any order), or None."""
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        head, _, number = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric == name and set(filter(None, rest.rstrip("}").split(","))) == want:
            return float(number)
    return None


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


async def test_worker_serves_delivered_counts(stack, smtp, tmp_path):
    user = await stack.create_user()
    template = await stack.create_template()
    port, prom_dir = free_port(), tmp_path / "prom"
    prom_dir.mkdir()
    # dramatiq's own variables (read by its Prometheus middleware, not by Herald's settings), and
    # prometheus-client's, set before start exactly as the worker containers do.
    metrics_env = {
        "dramatiq_prom_port": str(port),
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_db": str(prom_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
    }
    loop = asyncio.get_running_loop()
    with worker({**stack.env, **smtp.env, **metrics_env}, tmp_path / "worker.log"):
        for i in range(2):
            resp = await stack.send(
                notification_type="email",
                user_id=user["id"],
                template_code=template["code"],
                variables={"name": "Ada", "link": "https://example.com/x"},
                request_id=f"metrics-{i}",
            )
            assert resp.status == 202, await resp.text()
        await loop.run_in_executor(None, lambda: smtp.wait_for(2, 30))
        text = ""
        for _ in range(100):
            text = await loop.run_in_executor(None, scrape, port)
            if value(text, "herald_notifications_delivered_total", channel="email") == 2:
                break
            await asyncio.sleep(0.2)
    assert value(text, "herald_notifications_delivered_total", channel="email") == 2, text
    assert value(text, "herald_delivery_latency_seconds_count", channel="email") == 2
    assert value(text, "herald_delivery_latency_seconds_bucket", channel="email", le="+Inf") == 2
    assert value(text, "dramatiq_messages_total", actor_name="send_email", queue_name="email.queue") == 2
    assert value(text, "herald_worker_threads") == 2  # one process, two threads (the helper's default)
