"""Prometheus metrics of one HTTP service, in a registry of its own (no global registry).

Each app owns its registry so several apps can share a process (``make run``, the tests) without
their series colliding, and so nothing registers into prometheus_client's global default registry
that a worker's multiprocess collector might also see. Every name is listed in the README ("Metrics").
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: The queues whose depth the gateway reports (the contract's names, section 4).
DEPTH_QUEUES = ("email.queue", "push.queue", "failed.queue")
#: The providers with a circuit breaker in Redis (contract, section 5).
BREAKERS = ("smtp", "fcm")
#: ``herald_circuit_breaker_state`` values; an absent key is a closed breaker.
BREAKER_STATES = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}
#: A scrape must answer even when RabbitMQ or Redis hangs: a stuck source is dropped, not awaited.
SCRAPE_TIMEOUT_S = 2.0


class HttpMetrics:
    def __init__(self, *, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "herald_http_requests_total", "HTTP requests by method, route and status.",
            ["method", "route", "status"], registry=self.registry, namespace="",
        )
        self.latency = Histogram(
            "herald_http_request_duration_seconds", "HTTP request latency by method and route.",
            ["method", "route"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self.service = service

    async def refresh(self, app) -> None:
        """Called by the metrics middleware just before ``/metrics`` renders; nothing to read here."""

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class GatewayMetrics(HttpMetrics):
    """The gateway's send-path counters, plus gauges read from RabbitMQ and Redis at scrape time.

    Queue depths and breaker states live outside any Herald process, so they are read when
    Prometheus asks (a passive declare per queue on a publisher thread, one Redis pipeline) rather
    than pushed by a job: always as fresh as the scrape, and nothing to run when nobody scrapes.
    Every gateway replica reports the same values; queries take ``max`` over instances.
    """

    def __init__(self, *, service: str = "gateway") -> None:
        super().__init__(service=service)
        r = self.registry
        self.accepted = Counter("herald_notifications_accepted_total",
                                "Notifications accepted (202) by the gateway, by channel.", ["channel"], registry=r)
        self.rate_limited = Counter("herald_rate_limited_total",
                                    "Sends refused with RATE_LIMITED, by channel.", ["channel"], registry=r)
        self.idempotency = Counter("herald_idempotency_hits_total",
                                   "Sends whose request_id was seen before, by outcome "
                                   "(replayed, conflict, in_progress).", ["outcome"], registry=r)
        self.queue_depth = Gauge("herald_queue_depth", "Ready messages in a RabbitMQ queue, read at scrape time.",
                                 ["queue"], registry=r)
        self.breaker_state = Gauge("herald_circuit_breaker_state",
                                   "Provider circuit breaker: 0 closed, 1 half-open, 2 open (from Redis).",
                                   ["provider"], registry=r)
        for channel in ("email", "push"):  # so rate() has a zero to start from before the first send
            self.accepted.labels(channel)
            self.rate_limited.labels(channel)
        for outcome in ("replayed", "conflict", "in_progress"):
            self.idempotency.labels(outcome)

    def idempotency_hit(self, replay) -> None:
        """Count a repeated ``request_id`` by what the client gets back (a guards ``Replay``)."""
        outcome = "replayed" if replay.data is not None else "in_progress" if replay.in_progress else "conflict"
        self.idempotency.labels(outcome).inc()

    async def refresh(self, app) -> None:
        # Imported here: web.common.keys imports this module, and the gateway's keys import the app.
        from web.common import keys
        from web.gateway.keys import publisher_key

        await asyncio.gather(self._refresh_depths(app.get(publisher_key)),
                             self._refresh_breakers(app[keys.redis_key], app[keys.redis_keys_key]))

    async def _refresh_depths(self, publisher) -> None:
        try:
            if publisher is None or not publisher.ready:
                raise LookupError("publisher not ready")
            loop = asyncio.get_running_loop()
            depths = await asyncio.wait_for(
                loop.run_in_executor(publisher.executor, queue_depths, publisher.broker), SCRAPE_TIMEOUT_S)
        except Exception as exc:
            # A stale depth would hide a growing backlog; no series at all is what an alert can see.
            log.warning("queue depths unavailable: %s", type(exc).__name__)
            self.queue_depth.clear()
            return
        for queue, depth in depths.items():
            self.queue_depth.labels(queue).set(depth)

    async def _refresh_breakers(self, redis, redis_keys) -> None:
        try:
            pipe = redis.pipeline(transaction=False)
            for name in BREAKERS:
                pipe.hget(redis_keys.circuit(name), "state")
            states = await asyncio.wait_for(pipe.execute(), SCRAPE_TIMEOUT_S)
        except Exception as exc:
            log.warning("breaker states unavailable: %s", type(exc).__name__)
            self.breaker_state.clear()
            return
        for name, state in zip(BREAKERS, states, strict=True):
            if isinstance(state, bytes):
                state = state.decode()
            self.breaker_state.labels(name).set(BREAKER_STATES.get((state or "CLOSED").upper(), 0))


def queue_depths(broker) -> dict[str, int]:
    """Message counts of :data:`DEPTH_QUEUES`, on the calling (publisher) thread's channel.

    A passive declare is the cheapest way to ask: it creates nothing, and a missing queue closes
    only this thread's channel, which is dropped so the next publish opens a fresh one.
    """
    queues = getattr(broker, "queues", None)
    if isinstance(queues, dict):  # dramatiq's StubBroker (``make run``): in-process queues
        return {q: queues[q].qsize() for q in DEPTH_QUEUES if q in queues}
    import pika.exceptions

    out = {}
    try:
        for queue in DEPTH_QUEUES:
            out[queue] = broker.channel.queue_declare(queue=queue, passive=True).method.message_count
    except pika.exceptions.AMQPError:
        del broker.connection
        raise
    return out
