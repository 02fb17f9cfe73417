"""RabbitMQ, Redis and PostgreSQL each "stopped" (their proxy cut: open connections closed, new
ones refused) and "restarted" during a stream of sends, for the gateway, the services and both
workers at once. While the dependency is away the gateway answers 503 SERVICE_UNAVAILABLE, never a
202 that is later lost; everything it accepted is delivered once the dependency is back, because
the workers' outage path delays a message rather than dropping it."""

from __future__ import annotations

import pytest

from tests.faults.conftest import WORKER_THREADS, outage
from tests.support.ledger import Ledger

#: Copies beyond the first that each outage may cause. RabbitMQ and Redis: none (a redelivered
#: message finds its notification delivered, or waits for the send claim). PostgreSQL: the sends in
#: flight in the two workers when it went away may be sent again, because a send the provider
#: accepted but PostgreSQL could not record is re-published whole; that is the defect pinned by
#: ``test_fault_postgres_window.py`` (strict xfail), bounded here so the stream stays checked.
DUPLICATE_BOUND = {"rabbitmq": 0, "redis": 0, "postgres": 2 * WORKER_THREADS}


@pytest.mark.timeout(150)
@pytest.mark.parametrize("dependency", ["rabbitmq", "redis", "postgres"])
async def test_dependency_outage_refuses_then_delivers_everything_accepted(herald, dependency):
    ledger = Ledger(f"{dependency}-outage", request_prefix=dependency)
    fault = await outage(herald, dependency, ledger)
    await herald.settle(ledger, timeout=60)
    result = herald.reconcile(ledger)
    during = fault.during(ledger)
    print(
        f"{dependency}: down {fault.restored_at - fault.cut_at:.1f}s, sends answered while down: {len(during)} "
        f"({sorted({a.status for a in during}, key=str)}), first 202 {fault.recovered_at - fault.restored_at:.1f}s "
        "after the restore"
    )
    assert during, "no send was answered while the dependency was down"
    assert all(a.status == 503 for a in during), [(a.request_id, a.status, a.error) for a in during if a.status != 503]
    assert result.lost == 0, result.details()
    assert result.bad_status == 0, result.details()
    assert result.extra_copies <= DUPLICATE_BOUND[dependency], result.details()
    assert result.delivered_after_503 == 0 and result.unexpected == 0, result.details()
    assert result.unknown == 0 and result.other == 0, result.line()
