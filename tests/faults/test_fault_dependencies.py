"""RabbitMQ, Redis and PostgreSQL each "stopped" (their proxy cut: open connections closed, new
ones refused) and "restarted" during a stream of sends, for the gateway, the services and both
workers at once. While the dependency is away the gateway answers 503 SERVICE_UNAVAILABLE, never a
202 that is later lost; everything it accepted is delivered once the dependency is back, because
the workers' outage path delays a message rather than dropping it."""

from __future__ import annotations

import pytest

from tests.faults.conftest import outage
from tests.support.ledger import Ledger


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
    # No outage sends a copy: a redelivered message finds its notification delivered or waits for
    # the send claim; a send the provider accepted but PostgreSQL could not record is re-published as
    # a record-only copy; a check before a send that cannot reach a store delays the message rather
    # than letting dramatiq run the actor unchecked.
    assert result.extra_copies == 0, result.details()
    assert result.delivered_after_503 == 0 and result.unexpected == 0, result.details()
    assert result.unknown == 0 and result.other == 0, result.line()
