"""The breaker's state machine (pure, fast), the shared state on the real Redis with two instances
standing for two worker processes, and the middleware deferring messages on a StubBroker."""

from __future__ import annotations

import time

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker

from messaging.messages import CIRCUIT_DEFERRALS
from middleware.backoff import Backoff
from middleware.circuit_breaker import (
    ALLOW,
    CLOSED,
    HALF_OPEN,
    OPEN,
    PROBE,
    WAIT,
    BreakerState,
    CircuitBreaker,
    Policy,
    SharedBreaker,
)
from models.redis_keys import RedisKeys
from providers.errors import PermanentProviderError, RetryableProviderError
from tests.support.resources import REDIS_URL

POLICY = Policy(failure_threshold=3, recovery_timeout_s=10, success_threshold=2)


# -- the state machine ---------------------------------------------------------------------------


def fail(state: BreakerState, times: int, now: float = 100.0) -> BreakerState:
    for _ in range(times):
        state = state.on_failure(now, POLICY)
    return state


def test_closed_opens_after_threshold_consecutive_failures():
    state = fail(BreakerState(), 2)
    assert (state.state, state.failure_count, state.last_failure_time) == (CLOSED, 2, 100.0)
    assert state.admission(100.0, POLICY).kind == ALLOW
    state = fail(state, 1)
    assert state.state == OPEN
    assert state.admission(104.0, POLICY) == state.admission(104.0, POLICY)
    assert state.admission(104.0, POLICY).kind == WAIT
    assert state.admission(104.0, POLICY).wait_s == pytest.approx(6.0)


def test_a_success_resets_the_failure_count_while_closed():
    state = fail(BreakerState(), 2).on_success(POLICY)
    assert state.failure_count == 0 and state.state == CLOSED
    assert fail(state, 2).state == CLOSED


def test_open_turns_half_open_after_the_recovery_timeout_only():
    state = fail(BreakerState(), 3)
    assert state.tick(109.9, POLICY) == state
    half = state.tick(110.0, POLICY)
    assert half.state == HALF_OPEN and half.success_count == 0
    assert half.admission(110.0, POLICY).kind == PROBE


def test_half_open_closes_after_enough_successes():
    half = fail(BreakerState(), 3).tick(111, POLICY)
    once = half.on_success(POLICY)
    assert (once.state, once.success_count) == (HALF_OPEN, 1)
    closed = once.on_success(POLICY)
    assert (closed.state, closed.failure_count, closed.success_count) == (CLOSED, 0, 0)


def test_any_failure_in_half_open_reopens_with_a_fresh_recovery_time():
    half = fail(BreakerState(), 3).tick(111, POLICY).on_success(POLICY)
    reopened = half.on_failure(112.0, POLICY)
    assert (reopened.state, reopened.success_count, reopened.last_failure_time) == (OPEN, 0, 112.0)
    assert reopened.tick(121.9, POLICY).state == OPEN and reopened.tick(122.0, POLICY).state == HALF_OPEN


def test_late_outcomes_while_open_change_nothing():
    state = fail(BreakerState(), 3)
    assert state.on_failure(105.0, POLICY) == state
    assert state.on_success(POLICY) == state


def test_hash_round_trip_and_garbage():
    state = fail(BreakerState(), 3, now=1234.5678)
    assert BreakerState.from_hash(state.to_hash()) == state
    assert BreakerState.from_hash({}) == BreakerState()
    assert BreakerState.from_hash({b"state": b"OPEN", b"failure_count": b"4"}).failure_count == 4
    assert BreakerState.from_hash({"state": "weird", "failure_count": "x"}) == BreakerState()


# -- shared through Redis ------------------------------------------------------------------------


@pytest.fixture
def client():
    c = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield c
    c.close()


def pair(client, prefix: str, policy: Policy) -> tuple[SharedBreaker, SharedBreaker]:
    """Two breakers on one key with their own connections, as two worker processes have."""
    other = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = RedisKeys(prefix).circuit("smtp")
    probe = RedisKeys(prefix).circuit_probe("smtp")
    return (
        SharedBreaker(redis=client, key=key, probe_key=probe, policy=policy),
        SharedBreaker(redis=other, key=key, probe_key=probe, policy=policy),
    )


def test_two_processes_share_one_breaker(client, redis_prefix):
    policy = Policy(failure_threshold=4, recovery_timeout_s=0.3, success_threshold=2)
    a, b = pair(client, redis_prefix, policy)
    assert a.admit("m0").kind == ALLOW
    key = f"{redis_prefix}circuit:smtp"
    assert client.hgetall(key)["state"] == CLOSED, "the key exists while closed"
    for breaker in (a, b, a):
        breaker.record_failure()
    assert b.read().failure_count == 3 and b.admit("m1").kind == ALLOW
    b.record_failure()
    stored = client.hgetall(key)
    assert stored["state"] == OPEN and stored["failure_count"] == "4" and float(stored["last_failure_time"]) > 0
    assert a.admit("m2").kind == WAIT and 0 < a.admit("m2").wait_s <= 0.3
    deadline = time.monotonic() + 5
    while a.read().tick(time.time(), policy).state == OPEN and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)
    # half-open: one probe at a time, whichever process asks first
    first, second = a.admit("m3"), b.admit("m4")
    assert first.kind == ALLOW and first.probe and second.kind == WAIT
    assert client.hgetall(key)["state"] == HALF_OPEN
    a.record_success()
    a.release_probe("m3")
    assert b.admit("m4").kind == ALLOW
    b.record_success()
    b.release_probe("m4")
    assert client.hgetall(key) | {"last_failure_time": "x"} == {
        "state": CLOSED,
        "failure_count": "0",
        "success_count": "0",
        "last_failure_time": "x",
    }
    assert not client.exists(f"{key}:probe")


def test_a_probe_failure_reopens_for_everyone(client, redis_prefix):
    policy = Policy(failure_threshold=1, recovery_timeout_s=0.1, success_threshold=1)
    a, b = pair(client, redis_prefix, policy)
    a.record_failure()
    time.sleep(0.15)
    assert a.admit("p").kind == ALLOW
    a.record_failure()
    a.release_probe("p")
    assert b.read().state == OPEN and b.admit("q").kind == WAIT


def test_only_the_holder_releases_the_probe_lease(client, redis_prefix):
    policy = Policy(failure_threshold=1, recovery_timeout_s=0, success_threshold=5)
    a, b = pair(client, redis_prefix, policy)
    a.record_failure()
    assert a.admit("holder").kind == ALLOW
    b.release_probe("someone-else")
    assert client.get(a.probe_key) == "holder"
    assert a.admit("holder").kind == ALLOW, "a redelivered probe keeps its lease"


def test_concurrent_failures_are_all_counted(client, redis_prefix):
    import threading

    policy = Policy(failure_threshold=1000, recovery_timeout_s=1, success_threshold=1)
    breakers = [
        SharedBreaker(
            redis=redis.Redis.from_url(REDIS_URL, decode_responses=True),
            key=RedisKeys(redis_prefix).circuit("fcm"),
            probe_key=RedisKeys(redis_prefix).circuit_probe("fcm"),
            policy=policy,
        )
        for _ in range(4)
    ]
    threads = [threading.Thread(target=lambda b=b: [b.record_failure() for _ in range(25)]) for b in breakers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breakers[0].read().failure_count == 100


# -- the middleware ------------------------------------------------------------------------------


class FakeStatus:
    def record(self, *args, **kwargs):
        pass


def test_open_circuit_defers_without_touching_the_provider_or_spending_retries(client, redis_prefix):
    policy = Policy(failure_threshold=2, recovery_timeout_s=0.5, success_threshold=1)
    breaker_mw = CircuitBreaker(redis=client, keys=RedisKeys(redis_prefix), policy=policy)
    broker = StubBroker(middleware=[breaker_mw, Backoff(status=FakeStatus(), max_retries=5, unit_ms=1)])
    broker.emit_after("process_boot")
    calls: list[str] = []
    outcomes = {"n": [RetryableProviderError("down", reason="smtp_unreachable")] * 2}

    @dramatiq.actor(broker=broker, queue_name="email.queue", circuit="smtp")
    def send_email(notification):
        calls.append(notification["id"])
        if notification["id"] == "bounce":
            raise PermanentProviderError("550", reason="smtp_5xx")
        if outcomes["n"]:
            raise outcomes["n"].pop()

    deferred: list[dict] = []
    enqueue = broker.enqueue

    def spy(message, *, delay=None):
        if delay is not None and message.options.get(CIRCUIT_DEFERRALS):
            deferred.append(dict(message.options))
        return enqueue(message, delay=delay)

    broker.enqueue = spy
    worker = dramatiq.Worker(broker, worker_timeout=10, worker_threads=1)
    worker.start()
    try:
        send_email.send({"id": "a"})  # fails, retried
        broker.join("email.queue", fail_fast=False)
        worker.join()
        assert breaker_mw.breaker("smtp").read().state == CLOSED
        send_email.send({"id": "bounce"})  # a permanent error is not a breaker failure
        broker.join("email.queue", fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    # a: fail (1), retry fails (2) -> OPEN; the next retry waits for the circuit, then probes and succeeds
    assert calls == ["a", "a", "a", "bounce"]
    assert deferred and all(options.get("retries") == 2 for options in deferred)
    assert breaker_mw.breaker("smtp").read().state == CLOSED


def test_redis_away_lets_messages_through():
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True, retry=Retry(NoBackoff(), 0)
    )
    broker = StubBroker(middleware=[CircuitBreaker(redis=dead, keys=RedisKeys("x:"), policy=POLICY)])
    broker.emit_after("process_boot")
    calls = []

    @dramatiq.actor(broker=broker, queue_name="push.queue", circuit="fcm")
    def send_push(notification):
        calls.append(1)

    worker = dramatiq.Worker(broker, worker_timeout=10)
    worker.start()
    try:
        send_push.send({})
        broker.join("push.queue")
        worker.join()
    finally:
        worker.stop()
    assert calls == [1]


def test_a_test_mode_notification_neither_waits_for_an_open_circuit_nor_counts_towards_it(client, redis_prefix):
    """Test mode never reaches the provider, so the provider's circuit is none of its business."""
    breaker_mw = CircuitBreaker(redis=client, keys=RedisKeys(redis_prefix), policy=POLICY)
    breaker = breaker_mw.breaker("smtp")
    for _ in range(POLICY.failure_threshold):
        breaker.record_failure()
    opened = breaker.read()
    assert opened.state == OPEN
    broker = StubBroker(middleware=[breaker_mw])
    broker.emit_after("process_boot")
    calls = []

    @dramatiq.actor(broker=broker, queue_name="email.queue", circuit="smtp")
    def send_email(notification):
        calls.append(notification["mode"])
        if notification.get("fail"):
            raise RetryableProviderError("simulated", reason="x")

    deferred = []
    enqueue = broker.enqueue

    def spy(message, *, delay=None):
        if delay is not None and message.options.get(CIRCUIT_DEFERRALS):
            deferred.append(message.args[0]["mode"])
        return enqueue(message, delay=delay)

    broker.enqueue = spy
    worker = dramatiq.Worker(broker, worker_timeout=10, worker_threads=1)
    worker.start()
    try:
        send_email.send({"mode": "test"})
        send_email.send({"mode": "test", "fail": True})
        broker.join("email.queue", fail_fast=False)
        worker.join()
        assert calls == ["test", "test"] and deferred == []
        assert breaker.read() == opened, "neither a success nor a failure was counted"
        send_email.send({"mode": "live"})  # the control: a live one waits for the open circuit
        deadline = time.monotonic() + 5
        while not deferred and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert deferred == ["live"] and calls == ["test", "test"]
