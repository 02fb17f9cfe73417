"""Worker-side metrics: delivered and failed notifications, end-to-end latency, retries, threads;
webhook deliveries succeeded, retried and failed, and their latency.

They are served on 9191 by dramatiq's own Prometheus exposition server, which reads every worker
process's files from the multiprocess directory. prometheus_client picks in-memory or multiprocess
values once, when it is first imported, so this module never imports it at import time and builds
its instruments lazily, after every middleware's ``after_process_boot`` (where dramatiq's
middleware points ``PROMETHEUS_MULTIPROC_DIR`` at its directory). Deployments set that variable to
the same directory before the worker starts anyway (see the README, "Metrics"), which makes the order of
imports irrelevant.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from dramatiq import Middleware

from messaging.messages import (
    BACKOFF,
    EVENT_CREATED_AT,
    RECORDED,
    RETRY_SCHEDULED,
    WEBHOOK_ID,
    notification_of,
)
from messaging.topology import CHANNEL_OF_ACTOR, WEBHOOK_ACTOR
from models.notification import DELIVERED
from models.webhook import SUCCEEDED

#: End-to-end latency (accepted → delivered) buckets, seconds: the target is p95 under 5 s,
#: while retries and breaker waits stretch the tail into minutes.
E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

#: Every metric this module exports, for docs and the dashboard test (counters with ``_total``).
NAMES = (
    "herald_notifications_delivered_total",
    "herald_notifications_failed_total",
    "herald_delivery_latency_seconds",
    "herald_notification_retries_total",
    "herald_worker_threads",
    "herald_webhook_deliveries_succeeded_total",
    "herald_webhook_deliveries_failed_total",
    "herald_webhook_retries_total",
    "herald_webhook_delivery_latency_seconds",
    "herald_notifications_ended_total",
)
#: Event → receiver's 2xx latency buckets, seconds: a few ms on a good day, the whole retry
#: schedule (minutes) on a bad one.
WEBHOOK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class _Instruments:
    def __init__(self, registry=None) -> None:
        import prometheus_client as prom

        # A private registry: in multiprocess mode the values live in files whatever the registry,
        # and the default registry must stay empty in processes that also serve HTTP (``make run``).
        self.registry = registry = registry if registry is not None else prom.CollectorRegistry()
        self.delivered = prom.Counter(
            NAMES[0], "Notifications delivered to the provider, by channel.", ["channel"], registry=registry
        )
        self.failed = prom.Counter(
            NAMES[1], "Notifications that failed for good (dead-lettered), by channel.", ["channel"], registry=registry
        )
        self.latency = prom.Histogram(
            NAMES[2],
            "Seconds from the gateway's acceptance (created_at) to delivery.",
            ["channel"],
            buckets=E2E_BUCKETS,
            registry=registry,
        )
        self.retries = prom.Counter(
            NAMES[3],
            "Delivery retries scheduled by the backoff middleware, by channel.",
            ["channel"],
            registry=registry,
        )
        self.ended = prom.Counter(
            NAMES[9],
            "Notifications ended without a send (cancelled, expired) by the workers, by channel and status.",
            ["channel", "status"],
            registry=registry,
        )
        self.threads = prom.Gauge(
            NAMES[4],
            "Worker threads of live worker processes (utilisation denominator).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Labelled by subscription id: few (an admin makes them), and the alert is per webhook.
        self.webhook_succeeded = prom.Counter(
            NAMES[5],
            "Webhook deliveries answered 2xx, by webhook.",
            ["webhook"],
            registry=registry,
        )
        self.webhook_failed = prom.Counter(
            NAMES[6],
            "Webhook deliveries that failed for good (retries used up, or the address refused), by webhook.",
            ["webhook"],
            registry=registry,
        )
        self.webhook_retries = prom.Counter(
            NAMES[7],
            "Webhook delivery retries scheduled (a non-2xx answer, a timeout, a refused connection), by webhook.",
            ["webhook"],
            registry=registry,
        )
        self.webhook_latency = prom.Histogram(
            NAMES[8],
            "Seconds from the event (a notification's final status) to the receiver's 2xx.",
            buckets=WEBHOOK_BUCKETS,
            registry=registry,
        )


def channel_of(message) -> str:
    """``email`` or ``push``; a bounded label whatever the message carries."""
    channel = notification_of(message).get("notification_type")
    if channel in CHANNEL_OF_ACTOR.values():
        return channel
    return CHANNEL_OF_ACTOR.get(message.actor_name, "other")


def latency_since(created_at: str | None, now: float | None = None) -> float | None:
    """Seconds since the body's ``created_at`` (ISO 8601, ``Z``), or None when absent or unreadable."""
    if not created_at:
        return None
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if created.tzinfo is None:
        return None
    return max(0.0, (time.time() if now is None else now) - created.timestamp())


class WorkerMetrics(Middleware):
    """Counts outcomes once the rest of the stack has decided them.

    It must sit above every middleware that decides an outcome in ``build_stack``: ``after_*``
    hooks run bottom-up, so by the time this one runs a message that will be tried again is marked
    (``retry_scheduled``: a backoff retry is counted as one, an outage wait not at all), a delivery
    is counted once, when it was recorded (by this attempt, or by a record-only copy), and a
    message dead-lettered is a failure.

    The instruments are built on first use, after process boot (see the module doc), and belong to
    this middleware: one per worker process.
    """

    def __init__(self) -> None:
        self._instruments: _Instruments | None = None
        self._lock = threading.Lock()

    @property
    def instruments(self) -> _Instruments:
        if self._instruments is None:
            with self._lock:
                if self._instruments is None:
                    self._instruments = _Instruments()
        return self._instruments

    def after_worker_boot(self, broker, worker):
        self.instruments.threads.inc(worker.worker_threads)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if message.actor_name == WEBHOOK_ACTOR:
            self._webhook(message, result, exception)
            return
        if message.actor_name not in CHANNEL_OF_ACTOR:
            return  # maintenance jobs are not notifications
        channel = channel_of(message)
        scheduled = message.options.get(RETRY_SCHEDULED)
        if message.options.get(RECORDED) == DELIVERED:
            self._delivered(message, channel)
        elif scheduled == BACKOFF:
            self.instruments.retries.labels(channel).inc()
        elif exception is not None and not scheduled:
            self.instruments.failed.labels(channel).inc()

    def after_skip_message(self, broker, message):
        recorded = message.options.get(RECORDED)
        if message.actor_name not in CHANNEL_OF_ACTOR or recorded is None:
            return
        if recorded == DELIVERED:
            self._delivered(message, channel_of(message))
        else:
            self.ended(channel_of(message), recorded)

    def ended(self, channel: str, status: str) -> None:
        """Count a notification that ended without a send (the due-time loop calls this too)."""
        self.instruments.ended.labels(channel, status).inc()

    def _webhook(self, message, result, exception) -> None:
        """The webhook actor returns ``succeeded`` when a receiver answered 2xx (it returns
        nothing for a delivery it dropped: gone, or already ended)."""
        webhook = str(message.options.get(WEBHOOK_ID) or "unknown")
        scheduled = message.options.get(RETRY_SCHEDULED)
        if exception is None and result == SUCCEEDED:
            self.instruments.webhook_succeeded.labels(webhook).inc()
            seconds = latency_since(message.options.get(EVENT_CREATED_AT))
            if seconds is not None:
                self.instruments.webhook_latency.observe(seconds)
        elif scheduled == BACKOFF:
            self.instruments.webhook_retries.labels(webhook).inc()
        elif exception is not None and not scheduled:
            self.instruments.webhook_failed.labels(webhook).inc()

    def _delivered(self, message, channel: str) -> None:
        self.instruments.delivered.labels(channel).inc()
        seconds = latency_since(notification_of(message).get("created_at"))
        if seconds is not None:
            self.instruments.latency.labels(channel).observe(seconds)


def stack(settings) -> list[Middleware]:
    """The metrics middleware for ``build_stack``: dramatiq's Prometheus, then Herald's.

    dramatiq's middleware only works under the ``dramatiq`` CLI (which emits ``process_boot`` and
    runs its exposition server); ``make run``'s in-process worker (no ``RABBITMQ_URL``) gets
    Herald's counters alone, kept in memory and not served.
    """
    if settings.rabbitmq_url is None:
        return [WorkerMetrics()]
    from dramatiq.middleware.prometheus import Prometheus

    return [Prometheus(), WorkerMetrics()]
