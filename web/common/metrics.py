"""Prometheus metrics of one HTTP service, in a registry of its own (no global registry).

Each app owns its registry so several apps can share a process (``make run``, the tests) without
their series colliding, and so nothing registers into prometheus_client's global default registry
that a worker's multiprocess collector might also see. Every name is listed in the README ("Metrics").
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HttpMetrics:
    """Request counts and latencies by route; a service adds its own instruments by subclassing."""

    def __init__(self, *, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "herald_http_requests_total",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
            namespace="",
        )
        self.latency = Histogram(
            "herald_http_request_duration_seconds",
            "HTTP request latency by method and route.",
            ["method", "route"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.service = service

    async def refresh(self, app) -> None:
        """Called by the metrics middleware just before ``/metrics`` renders: a subclass reads the
        gauges whose values live outside the process here. Nothing to read in the base."""

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
