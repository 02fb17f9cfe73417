"""Periodic maintenance: the queue and breaker monitor, the stuck-``pending`` report, and the sweep
that publishes again webhook deliveries whose message was lost.

``periodiq actors`` (exactly one) enqueues a tick per minute on ``maintenance.queue``; the
maintenance workers run it. Two schedulers, or a tick redelivered after a worker crash, must not
alert twice, so each job claims its tick with a Redis ``SET NX`` on ``maintenance:<job>:<tick>``.
A tick is never retried (a late one is stale, and the next comes in a minute): the jobs catch every
error themselves, so no retry middleware sees an exception.

An alert (an ERROR line, the counters below, a POST to ``ALERT_WEBHOOK_URL``) fires when a
condition starts, again when it has lasted :data:`REALERT_S`, and once more, as ``resolved``, when
it ends; in between the condition's last alert is remembered in Redis, so every worker process
agrees on what was already said.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import dramatiq
from dramatiq.middleware import CurrentMessage
from periodiq import PeriodiqMiddleware, cron

from messaging.messages import SCHEDULED_AT
from messaging.rabbitmq import queue_depths
from messaging.topology import EMAIL_QUEUE, FAILED_QUEUE, MAINTENANCE_QUEUE, PUSH_QUEUE, WATCHED_QUEUES
from messaging.webhook_events import WebhookEvents
from middleware.backoff import MAX_DELAY_MS, schedule_ms
from middleware.circuit_breaker import BREAKERS, CLOSED, OPEN, queue_state_reads, read_states
from middleware.stack import TIME_LIMIT_MS
from models.base import iso, utcnow
from models.dao import notifications as dao
from models.redis_keys import RedisKeys

log = logging.getLogger(__name__)

#: A delivery queue with more messages waiting than this raises an alert.
BACKLOG_LIMIT = 1000
#: An alert still firing is repeated after this long.
REALERT_S = 30 * 60
#: Added to the whole retry schedule before a ``pending`` notification counts as stuck.
STUCK_MARGIN_S = 10 * 60
#: Ids quoted in a stuck-notifications report.
STUCK_SAMPLE = 10
#: Added to the longest webhook wait (the backoff's cap plus one attempt) before a ``pending`` delivery
#: untouched since counts as lost; generous, since a backlog on webhooks.queue also leaves rows
#: untouched, and a delivery published twice is sent twice.
WEBHOOK_LOST_MARGIN_S = 10 * 60
#: Deliveries one sweep publishes again at most.
WEBHOOK_SWEEP_LIMIT = 500
#: Seconds a webhook POST may take.
WEBHOOK_TIMEOUT_S = 5.0
#: How long a claimed tick is remembered (well past any redelivery).
TICK_TTL_S = 3600
#: periodiq drops a tick that waited in the queue longer than this.
SKIP_DELAY_S = 30


@dataclass
class Counters:
    """Plain counters for the metrics layer to read or wrap; ``hooks`` get every alert sent."""

    ticks: int = 0
    ticks_duplicate: int = 0
    alerts: int = 0
    resolved: int = 0
    webhook_failures: int = 0
    job_errors: int = 0
    stuck_pending: int = 0
    webhooks_republished: int = 0
    depths: dict[str, int | None] = field(default_factory=dict)
    breakers: dict[str, str] = field(default_factory=dict)
    hooks: list[Callable[[dict], None]] = field(default_factory=list)


class Maintenance:
    """The jobs' logic, bound to a worker's runtime.

    Parameters:
        settings: thresholds, the retry schedule and ``ALERT_WEBHOOK_URL``.
        redis: a blocking client (``decode_responses=True``).
        keys: the key names behind ``REDIS_KEY_PREFIX``.
        broker: the worker's broker, whose channel reads the queue depths (``None``: not read).
    """

    def __init__(self, *, settings, redis, keys: RedisKeys, broker=None, counters: Counters | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.broker = broker
        self.counters = counters or Counters()
        self.webhook_events = WebhookEvents(publish=lambda message: self.broker.enqueue(message))

    # -- ticks ---------------------------------------------------------------------------------

    def run(self, job: str, fn: Callable[[], None], tick: str | None) -> bool:
        """Run ``fn`` once per tick; ``tick`` ``None`` (a manual run) always runs. Never raises."""
        try:
            if tick is not None and not self.redis.set(
                self.keys.maintenance_tick(job, tick), "1", nx=True, ex=TICK_TTL_S
            ):
                self.counters.ticks_duplicate += 1
                log.info("maintenance tick already run elsewhere", extra={"job": job, "tick": tick})
                return False
        except Exception as exc:  # Redis away: better a repeated check than a missed one
            log.warning("tick not claimed (%s); running anyway", type(exc).__name__, extra={"job": job})
        self.counters.ticks += 1
        try:
            fn()
        except Exception:
            self.counters.job_errors += 1
            log.exception("maintenance job failed", extra={"job": job})
        return True

    # -- monitor -------------------------------------------------------------------------------

    def monitor(self) -> None:
        depths = self.queue_depths()
        breakers = self.breaker_states()
        self.counters.depths, self.counters.breakers = depths, breakers
        threshold = self.settings.dlq_alert_threshold
        failed = depths.get(FAILED_QUEUE)
        self.condition(
            "dlq_depth",
            failed is not None and failed > threshold,
            f"{failed} message(s) in {FAILED_QUEUE} (threshold {threshold})",
            {"queue": FAILED_QUEUE, "depth": failed, "threshold": threshold},
        )
        for queue in (EMAIL_QUEUE, PUSH_QUEUE):
            depth = depths.get(queue)
            self.condition(
                f"backlog:{queue}",
                depth is not None and depth > BACKLOG_LIMIT,
                f"{depth} message(s) waiting in {queue} (limit {BACKLOG_LIMIT})",
                {"queue": queue, "depth": depth, "threshold": BACKLOG_LIMIT},
            )
        for name in BREAKERS:
            state = breakers.get(name, CLOSED)
            self.condition(
                f"circuit:{name}", state == OPEN, f"circuit breaker {name} is OPEN", {"breaker": name, "state": state}
            )

    def queue_depths(self) -> dict[str, int | None]:
        """Messages ready in each watched queue (``None``: could not be read)."""
        if self.broker is None:
            return dict.fromkeys(WATCHED_QUEUES)
        try:
            return dict(queue_depths(self.broker, WATCHED_QUEUES))
        except Exception as exc:
            log.error("RabbitMQ unreachable; queue depths unknown (%s)", type(exc).__name__)
            return dict.fromkeys(WATCHED_QUEUES)

    def breaker_states(self) -> dict[str, str]:
        try:
            pipe = self.redis.pipeline(transaction=False)
            queue_state_reads(pipe, self.keys)
            return read_states(pipe.execute())
        except Exception as exc:
            log.error("breaker states unknown (%s)", type(exc).__name__)
            return {}

    # -- stuck notifications -------------------------------------------------------------------

    def stuck_after(self) -> dt.timedelta:
        """The longest a notification can honestly stay ``pending``: every backoff, plus a margin."""
        schedule = schedule_ms(self.settings.retry_max, self.settings.retry_backoff_unit_ms)
        return dt.timedelta(milliseconds=schedule, seconds=STUCK_MARGIN_S)

    def stuck(self) -> None:
        cutoff = utcnow() - self.stuck_after()
        count, sample = dao.pending_since(cutoff, sample=STUCK_SAMPLE)
        self.counters.stuck_pending = count
        self.condition(
            "stuck_pending",
            count > 0,
            f"{count} notification(s) pending since before {iso(cutoff)}",
            {"count": count, "sample": sample, "cutoff": iso(cutoff)},
        )

    # -- lost webhook deliveries ---------------------------------------------------------------

    def webhook_lost_after(self) -> dt.timedelta:
        """How long a ``pending`` delivery can honestly go untouched: the longest single wait (a
        receiver's ``Retry-After`` may stretch one to the backoff's cap) and one attempt (each
        attempt and each retry updates the row), plus a margin."""
        return dt.timedelta(milliseconds=MAX_DELAY_MS + TIME_LIMIT_MS, seconds=WEBHOOK_LOST_MARGIN_S)

    def sweep_webhooks(self) -> None:
        cutoff = utcnow() - self.webhook_lost_after()
        self.counters.webhooks_republished += self.webhook_events.republish_stale(cutoff, limit=WEBHOOK_SWEEP_LIMIT)

    # -- alerts --------------------------------------------------------------------------------

    def condition(self, name: str, firing: bool, summary: str, details: dict) -> None:
        """Alert on a change of ``name``'s state, or when it has fired for :data:`REALERT_S`."""
        key = self.keys.maintenance_alert(name)
        try:
            said = self.redis.get(key)
            if firing and said is None:
                self.redis.set(key, "firing", ex=REALERT_S)
            elif not firing and said is not None:
                self.redis.delete(key)
        except Exception as exc:
            log.warning("alert state unavailable (%s)", type(exc).__name__)
            said = None
        if firing and said is None:
            self.alert(name, "firing", summary, details)
        elif not firing and said is not None:
            self.alert(name, "resolved", summary, details)

    def alert(self, name: str, status: str, summary: str, details: dict) -> None:
        body = {
            "source": "herald",
            "alert": name,
            "status": status,
            "severity": "error",
            "summary": summary,
            "details": details,
            "at": iso(utcnow()),
        }
        if status == "firing":
            self.counters.alerts += 1
            log.error("ALERT %s: %s", name, summary, extra={"alert": name, "details": details})
        else:
            self.counters.resolved += 1
            log.info("resolved %s", name, extra={"alert": name, "details": details})
        for hook in self.counters.hooks:
            try:
                hook(body)
            except Exception:
                log.exception("alert hook failed")
        self.post(body)

    def post(self, body: dict) -> bool:
        url = self.settings.alert_webhook_url
        if not url:
            return False
        request = urllib.request.Request(  # noqa: S310 - ALERT_WEBHOOK_URL is checked to be http(s)
            url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310
                response.read(1024)
            return True
        except Exception as exc:
            self.counters.webhook_failures += 1
            log.error("alert webhook failed (%s)", type(exc).__name__, extra={"alert": body["alert"]})
            return False


def _tick() -> str | None:
    """The scheduler's ``scheduled_at`` of the message being processed (``None`` when called directly)."""
    message = CurrentMessage.get_current_message()
    return message.options.get(SCHEDULED_AT) if message is not None else None


def ensure_middleware(broker: dramatiq.Broker) -> None:
    """The middleware the periodic actors need, added unless the broker's stack has it already."""
    present = {type(m) for m in broker.middleware}
    if PeriodiqMiddleware not in present:
        broker.add_middleware(PeriodiqMiddleware(skip_delay=SKIP_DELAY_S))
    if CurrentMessage not in present:
        broker.add_middleware(CurrentMessage())


def register(broker: dramatiq.Broker, runtime) -> Maintenance:
    """Declare ``monitor_queues``, ``report_stuck_notifications`` and ``sweep_webhook_deliveries`` on
    ``broker``; idempotent."""
    existing = getattr(broker, "maintenance", None)
    if existing is not None:
        return existing
    ensure_middleware(broker)
    jobs = Maintenance(settings=runtime.settings, redis=runtime.status.redis, keys=runtime.status.keys, broker=broker)
    broker.maintenance = jobs

    @dramatiq.actor(
        broker=broker, actor_name="monitor_queues", queue_name=MAINTENANCE_QUEUE, periodic=cron("* * * * *")
    )
    def monitor_queues() -> None:
        jobs.run("monitor_queues", jobs.monitor, _tick())

    @dramatiq.actor(
        broker=broker, actor_name="report_stuck_notifications", queue_name=MAINTENANCE_QUEUE, periodic=cron("* * * * *")
    )
    def report_stuck_notifications() -> None:
        jobs.run("report_stuck_notifications", jobs.stuck, _tick())

    @dramatiq.actor(
        broker=broker, actor_name="sweep_webhook_deliveries", queue_name=MAINTENANCE_QUEUE, periodic=cron("* * * * *")
    )
    def sweep_webhook_deliveries() -> None:
        jobs.run("sweep_webhook_deliveries", jobs.sweep_webhooks, _tick())

    return jobs
