"""Backoff: the exact 2^n schedule, the count carried by the message, and its cooperation with
DeadLetter, on dramatiq's StubBroker and a real Worker (no services needed)."""

from __future__ import annotations

import itertools

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis

from messaging.messages import FAILURE_REASON, RETRIES, RETRY_SCHEDULED
from middleware.backoff import (
    MAX_DELAY_MS,
    RETRIES_EXHAUSTED,
    Backoff,
    compute_delay,
    retry_delay,
    schedule_ms,
)
from middleware.dead_letter import DeadLetter
from providers.errors import PermanentProviderError, RetryableProviderError


class FakeStatus:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def record(self, notification_id, *, outcome, status, error=None):
        self.records.append(
            {"id": notification_id, "outcome": outcome, "status": status, "error": error, "at": current_millis()}
        )


def test_compute_delay_is_unit_times_two_to_the_n():
    assert [compute_delay(n, 1000) for n in range(1, 6)] == [2000, 4000, 8000, 16000, 32000]
    assert [compute_delay(n, 100) for n in range(1, 6)] == [200, 400, 800, 1600, 3200]


def test_the_whole_schedule_is_the_sum_of_its_waits():
    assert schedule_ms(5, 1000) == 2000 + 4000 + 8000 + 16000 + 32000
    assert schedule_ms(0, 1000) == 0


def test_compute_delay_rejects_retry_zero():
    with pytest.raises(ValueError):
        compute_delay(0, 1000)


def test_retry_after_is_a_lower_bound_and_the_wait_is_capped():
    assert retry_delay(1, 1000, retry_after_s=30) == 30_000
    assert retry_delay(3, 1000, retry_after_s=1) == 8000
    assert retry_delay(1, 1000, retry_after_s=0.0015) == 2000
    assert retry_delay(1, 1000, retry_after_s=10**6) == MAX_DELAY_MS
    assert retry_delay(20, 3_600_000) == MAX_DELAY_MS


def make_broker(status: FakeStatus, *, max_retries: int = 5, unit_ms: int = 1):
    broker = StubBroker(
        middleware=[DeadLetter(status=status), Backoff(status=status, max_retries=max_retries, unit_ms=unit_ms)]
    )
    broker.emit_after("process_boot")
    return broker


def run(broker, actor, body: dict):
    delays: list[int] = []
    enqueue = broker.enqueue

    def spy(message, *, delay=None):
        if delay is not None:  # not the send, nor the worker moving a due message back to its queue
            delays.append(delay)
        return enqueue(message, delay=delay)

    broker.enqueue = spy
    actor.send(body)
    worker = dramatiq.Worker(broker, worker_timeout=10)
    worker.start()
    try:
        broker.join(actor.queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    return delays


def test_retryable_failure_is_retried_on_the_2n_schedule_then_dead_lettered():
    status = FakeStatus()
    broker = make_broker(status, unit_ms=5)
    seen: list[tuple[int, int]] = []

    @dramatiq.actor(broker=broker, queue_name="email.queue")
    def send_email(notification):
        seen.append((notification.get("retry_count", 0), current_millis()))
        raise RetryableProviderError("451 try later", reason="smtp_4xx")

    delays = run(broker, send_email, {"notification_id": "n-1", "retry_count": 0})
    assert delays == [10, 20, 40, 80, 160]
    assert [count for count, _ in seen] == [0, 1, 2, 3, 4, 5]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(seen)]
    assert all(gap >= 5 * 2 ** (i + 1) for i, gap in enumerate(gaps)), gaps
    assert [r["outcome"] for r in status.records] == ["retry_scheduled"] * 5 + ["failed"]
    assert all(r["status"] is None for r in status.records[:5]) and status.records[-1]["status"] == "failed"
    assert all("smtp_4xx" in r["error"] for r in status.records)
    [dead] = broker.dead_letters
    assert dead.options[RETRIES] == 5 and dead.options[FAILURE_REASON] == RETRIES_EXHAUSTED


def test_permanent_failure_is_dead_lettered_at_once():
    status = FakeStatus()
    broker = make_broker(status)
    calls = []

    @dramatiq.actor(broker=broker, queue_name="email.queue")
    def send_email(notification):
        calls.append(1)
        raise PermanentProviderError("550 no such user", reason="smtp_5xx")

    delays = run(broker, send_email, {"notification_id": "n-2"})
    assert delays == [] and len(calls) == 1
    assert [(r["outcome"], r["status"]) for r in status.records] == [("failed", "failed")]
    [dead] = broker.dead_letters
    assert RETRIES not in dead.options


def test_success_after_a_retry_is_not_dead_lettered():
    status = FakeStatus()
    broker = make_broker(status)
    calls = []

    @dramatiq.actor(broker=broker, queue_name="email.queue")
    def send_email(notification):
        calls.append(1)
        if len(calls) < 3:
            raise RetryableProviderError("timeout", reason="smtp_timeout", retry_after_s=0.02)

    delays = run(broker, send_email, {"notification_id": "n-3"})
    assert delays == [20, 20] and len(calls) == 3
    assert [r["outcome"] for r in status.records] == ["retry_scheduled", "retry_scheduled"]
    assert broker.dead_letters == []


def test_zero_retries_means_a_retryable_failure_is_final():
    status = FakeStatus()
    broker = make_broker(status, max_retries=0)

    @dramatiq.actor(broker=broker, queue_name="email.queue")
    def send_email(notification):
        raise RetryableProviderError("451", reason="smtp_4xx")

    assert run(broker, send_email, {"notification_id": "n-4"}) == []
    assert [r["outcome"] for r in status.records] == ["failed"]


class FakeMessage:
    actor_name = "send_email"

    def __init__(self, options=None):
        self.args = ({"notification_id": "n-5", "retry_count": 0},)
        self.options = dict(options or {})


def test_a_failed_publish_leaves_the_message_to_the_dead_letter():
    class Broken(StubBroker):
        def enqueue(self, message, *, delay=None):
            raise ConnectionError("rabbitmq away")

    message = FakeMessage()
    message.copy = lambda **kw: message
    Backoff(status=FakeStatus(), max_retries=5, unit_ms=1).after_process_message(
        Broken(middleware=[]), message, exception=RetryableProviderError("x", reason="smtp_4xx")
    )
    assert RETRY_SCHEDULED not in message.options
    assert message.options[FAILURE_REASON] == "retry_not_published"


def test_other_exceptions_and_success_are_ignored():
    backoff = Backoff(status=FakeStatus(), max_retries=5, unit_ms=1)
    for exception in (None, ValueError("bug"), PermanentProviderError("x", reason="smtp_5xx")):
        message = FakeMessage()
        backoff.after_process_message(object(), message, exception=exception)
        assert message.options == {}


def test_an_actor_with_its_own_limits_retries_on_its_own_schedule_and_is_no_dead_letter():
    """The webhook actor's limits (WEBHOOK_*) are options of the actor; RETRY_* stay the others'."""
    status = FakeStatus()
    broker = make_broker(status, max_retries=5, unit_ms=1)
    calls = []

    @dramatiq.actor(
        broker=broker, actor_name="deliver_webhook", queue_name="webhooks.queue", retry_limit=2, retry_unit_ms=3
    )
    def deliver_webhook(delivery_id):
        calls.append(delivery_id)
        raise RetryableProviderError("HTTP 503", reason="webhook_http_503")

    assert run(broker, deliver_webhook, "delivery-1") == [6, 12]
    assert calls == ["delivery-1"] * 3, "the same delivery, so the same event id and body, every time"
    assert status.records == [], "nothing is recorded on a notification"
    assert broker.dead_letters == [], "a webhook never goes to the notifications' failed.queue"
