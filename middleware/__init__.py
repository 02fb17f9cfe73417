"""Herald's dramatiq layer: the broker shaped to the contract's topology, and the middleware
that carries policy (priority, failure handling, logging context, database connections)."""

from __future__ import annotations

from dramatiq.middleware import ShutdownNotifications, TimeLimit

from middleware import metrics
from middleware.backoff import Backoff
from middleware.circuit_breaker import CircuitBreaker, Policy
from middleware.database import DatabaseConnection
from middleware.dead_letter import DeadLetter
from middleware.log_context import LogContext
from middleware.priority import Priority
from middleware.topology import DeclareTopology

#: A delivery that takes longer than this is interrupted (well under RabbitMQ's 30 min ack timeout).
TIME_LIMIT_MS = 60_000


def build_stack(runtime) -> list:
    """The worker middleware, in order. ``before_*`` hooks run top-down, ``after_*`` bottom-up:

    0. DeclareTopology: the contract's whole topology, declared when a worker boots.
    0b. metrics.stack: dramatiq's Prometheus exporter (9191) and Herald's delivery metrics, above
       DeadLetter and Backoff so the outcomes they count are final.
    1. TimeLimit, ShutdownNotifications: dramatiq's own guards against a hung send.
    2. LogContext: ids bound first, cleared last, so every other hook logs with them.
    3. Priority: AMQP priority on every publish (retries and deferrals too) and a small prefetch.
    4. CircuitBreaker: an open provider circuit defers the message before anything else is spent
       on it (no database connection, no retry); after the attempt it counts the outcome.
    5. DatabaseConnection: a pooled connection for the actor and the status writes.
    6. DeadLetter: a failure that nothing retried ends as ``failed`` in ``failed.queue``, with an alert.
    7. Backoff: last, so its ``after_process_message`` runs first: a retryable failure is
       re-published with its 2^n delay and marked, and DeadLetter then leaves it alone.

    dramatiq's ``Retries`` is deliberately absent: retry policy is Herald's, not dramatiq's.
    """
    settings = runtime.settings
    return [
        DeclareTopology(),
        *metrics.stack(settings),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        ShutdownNotifications(),
        LogContext(),
        Priority(prefetch=settings.worker_prefetch),
        CircuitBreaker(redis=runtime.status.redis, keys=runtime.status.keys, policy=Policy.from_settings(settings)),
        DatabaseConnection(databases=runtime.databases),
        DeadLetter(status=runtime.status),
        Backoff(status=runtime.status, max_retries=settings.retry_max, unit_ms=settings.retry_backoff_unit_ms),
    ]
