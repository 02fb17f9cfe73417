"""The gateway's p95 send latency over the last hour, from its own request histogram.

``herald_http_request_duration_seconds`` counts since the process started; the console keeps a
snapshot of the send route's buckets every minute for the last hour, and the difference between
now and the snapshot of an hour ago is the last hour's histogram. Its 95th percentile is estimated
as Prometheus's ``histogram_quantile`` does: linearly within the bucket the rank falls in. The
figure is this gateway process's; with several replicas each shows its own (Grafana has the sum).
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

METRIC = "herald_http_request_duration_seconds"
#: Both spellings of the send route (it is served with and without the trailing slash).
SEND_ROUTES = frozenset({"/api/v1/notifications", "/api/v1/notifications/"})
SAMPLE_EVERY_S = 60
WINDOW_S = 3600

Buckets = dict[float, float]


def send_buckets(registry: CollectorRegistry) -> Buckets:
    """Cumulative count of sends per bucket upper bound (``le``), since the process started."""
    out: Buckets = {}
    for family in registry.collect():
        if family.name != METRIC:
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == METRIC + "_bucket"
                and labels.get("method") == "POST"
                and labels.get("route") in SEND_ROUTES
            ):
                bound = float(labels["le"])
                out[bound] = out.get(bound, 0.0) + sample.value
    return out


def quantile(q: float, buckets: Buckets) -> tuple[float | None, bool]:
    """(estimate in seconds, whether it lies past the highest finite bound); (None, False) when
    nothing was counted."""
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return None, False
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in sorted(buckets):
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower, True
            if count == below:
                return bound, False
            return lower + (bound - lower) * (rank - below) / (count - below), False
        lower, below = bound, count
    return lower, True


@dataclass(frozen=True)
class Reading:
    """The p95 (seconds) of the sends of the last ``window_s`` seconds, and how many there were."""

    p95_s: float | None
    above_top: bool
    count: int
    window_s: int


class LatencyWindow:
    """Snapshots of the send buckets, one a minute, for an hour."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.snapshots: collections.deque[tuple[float, Buckets]] = collections.deque()
        self.sample()

    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.snapshots.append((now, send_buckets(self.registry)))
        while len(self.snapshots) > 1 and self.snapshots[1][0] <= now - WINDOW_S:
            self.snapshots.popleft()

    def reading(self, now: float | None = None) -> Reading:
        now = time.time() if now is None else now
        since, base = self.snapshots[0]
        current = send_buckets(self.registry)
        delta = {bound: count - base.get(bound, 0.0) for bound, count in current.items()}
        p95, above = quantile(0.95, delta)
        return Reading(p95, above, int(delta.get(math.inf, 0)), int(min(now - since, WINDOW_S)))
