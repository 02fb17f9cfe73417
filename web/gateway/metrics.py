"""The gateway's metrics: send-path counters, and gauges read from RabbitMQ and Redis at scrape time.

Every name is listed in the README ("Metrics").
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter, Gauge

from messaging.rabbitmq import queue_depths
from middleware.circuit_breaker import CLOSED, HALF_OPEN, OPEN, queue_state_reads, read_states
from models.notification import CHANNELS
from web.common import app_keys
from web.common.metrics import HttpMetrics
from web.gateway.app_keys import publisher_key

log = logging.getLogger(__name__)

#: ``herald_circuit_breaker_state`` values; an absent key is a closed breaker.
BREAKER_STATES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
#: A scrape must answer even when RabbitMQ or Redis hangs: a stuck source is dropped, not awaited.
SCRAPE_TIMEOUT_S = 2.0


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
        self.accepted = Counter(
            "herald_notifications_accepted_total",
            "Notifications accepted (202) by the gateway, by channel.",
            ["channel"],
            registry=r,
        )
        self.rate_limited = Counter(
            "herald_rate_limited_total", "Sends refused with RATE_LIMITED, by channel.", ["channel"], registry=r
        )
        self.idempotency = Counter(
            "herald_idempotency_hits_total",
            "Sends whose request_id was seen before, by outcome (replayed, conflict, in_progress).",
            ["outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "herald_queue_depth", "Ready messages in a RabbitMQ queue, read at scrape time.", ["queue"], registry=r
        )
        self.breaker_state = Gauge(
            "herald_circuit_breaker_state",
            "Provider circuit breaker: 0 closed, 1 half-open, 2 open (from Redis).",
            ["provider"],
            registry=r,
        )
        for channel in CHANNELS:  # so rate() has a zero to start from before the first send
            self.accepted.labels(channel)
            self.rate_limited.labels(channel)
        for outcome in ("replayed", "conflict", "in_progress"):
            self.idempotency.labels(outcome)

    def idempotency_hit(self, replay) -> None:
        """Count a repeated ``request_id`` by what the client gets back (a guards ``Replay``)."""
        outcome = "replayed" if replay.data is not None else "in_progress" if replay.in_progress else "conflict"
        self.idempotency.labels(outcome).inc()

    async def refresh(self, app) -> None:
        await asyncio.gather(
            self._refresh_depths(app.get(publisher_key)),
            self._refresh_breakers(app[app_keys.redis_key], app[app_keys.redis_keys_key]),
        )

    async def _refresh_depths(self, publisher) -> None:
        try:
            if publisher is None or not publisher.ready:
                raise LookupError("publisher not ready")
            depths = await asyncio.wait_for(publisher.run(queue_depths, publisher.broker), SCRAPE_TIMEOUT_S)
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
            queue_state_reads(pipe, redis_keys)
            states = read_states(await asyncio.wait_for(pipe.execute(), SCRAPE_TIMEOUT_S))
        except Exception as exc:
            log.warning("breaker states unavailable: %s", type(exc).__name__)
            self.breaker_state.clear()
            return
        for name, state in states.items():
            self.breaker_state.labels(name).set(BREAKER_STATES.get(state, 0))
