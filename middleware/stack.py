"""The worker middleware stack, in order: the one place the order is decided and explained."""

from __future__ import annotations

from dramatiq.middleware import ShutdownNotifications, TimeLimit

from middleware import metrics
from middleware.backoff import Backoff
from middleware.circuit_breaker import CircuitBreaker, Policy
from middleware.database import DatabaseConnection
from middleware.dead_letter import DeadLetter
from middleware.declare_topology import DeclareTopology
from middleware.delivery_guard import DeliveryGuard
from middleware.log_context import LogContext
from middleware.outage import OutageDelay
from middleware.priority import Priority
from middleware.webhook_outcome import WebhookOutcome

#: A delivery that takes longer than this is interrupted (well under RabbitMQ's 30 min ack timeout).
TIME_LIMIT_MS = 60_000
#: How long a send claim lives: past the time limit, so a claim outlives any send, yet a crashed
#: worker's claim frees itself soon.
CLAIM_MS = TIME_LIMIT_MS + 10_000


def build_stack(runtime) -> list:
    """The worker middleware, in order. ``before_*`` hooks run top-down, ``after_*`` bottom-up:

    0. DeclareTopology: the whole topology, declared when a worker boots.
    1. metrics.stack: dramatiq's Prometheus exporter (9191) and Herald's delivery metrics, above
       everything that decides an outcome, so what they count is final.
    2. TimeLimit, ShutdownNotifications: dramatiq's own guards against a hung send.
    3. LogContext: ids bound first, cleared last, so every other hook logs with them.
    4. Priority: AMQP priority on every publish (retries and deferrals too), a prefetch of the
       threads plus a margin, and a work queue ordered by AMQP priority.
    5. CircuitBreaker: an open provider circuit defers the message before anything else is spent
       on it (no database connection, no claim, no retry); after the attempt it counts the outcome.
    6. DatabaseConnection: a pooled connection for the hooks below and the actor.
    7. DeliveryGuard: the send claim, the already-done check and the recording of ``delivered``
       (or a record-only copy when recording hits an outage).
    8. DeadLetter: a notification failure that nothing below re-published ends ``failed`` in
       ``failed.queue``; WebhookOutcome: a webhook delivery's ends ``failed`` in its row.
    9. OutageDelay: PostgreSQL or Redis away: the message waits and comes back, not a failure.
    10. Backoff: last, so its ``after_process_message`` runs first: a retryable failure is
       re-published with its 2^n delay and marked, and the ones above then leave it alone. The
       limits are the actor's own when it declares them (the webhook actor), else RETRY_*.

    dramatiq's ``Retries`` is deliberately absent: retry policy is Herald's, not dramatiq's.
    Every policy above applies to the actors it names (DeliveryGuard and DeadLetter to the
    delivery actors, CircuitBreaker to actors with a ``circuit``), so a webhook delivery goes
    through Priority, the database connection, WebhookOutcome, OutageDelay and Backoff only.

    Parameters:
        runtime: the worker's :class:`~actors.runtime.Runtime` (settings, databases, status writer).
    """
    settings = runtime.settings
    status = runtime.status
    return [
        DeclareTopology(),
        *metrics.stack(settings),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        ShutdownNotifications(),
        LogContext(),
        Priority(margin=settings.worker_prefetch_margin),
        CircuitBreaker(redis=status.redis, keys=status.keys, policy=Policy.from_settings(settings)),
        DatabaseConnection(databases=runtime.databases),
        DeliveryGuard(status=status, claim_ms=CLAIM_MS),
        DeadLetter(status=status),
        WebhookOutcome(),
        OutageDelay(),
        Backoff(status=status, max_retries=settings.retry_max, unit_ms=settings.retry_backoff_unit_ms),
    ]
