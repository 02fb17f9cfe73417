"""What the overview shows, gathered from where each fact lives (README, "Operator console"):

- the last hour per channel, and the chart: PostgreSQL (:mod:`models.dao.notification_counts`);
- queue depths: RabbitMQ, a passive declare per queue on a publishing thread
  (:func:`messaging.rabbitmq.queue_depths`, as the gateway's ``/metrics`` reads them);
- breaker states: Redis (:func:`middleware.circuit_breaker.read_states`);
- p95 send latency: this gateway's request histogram (:mod:`web.console.latency`).

Each source is read with a short timeout and may fail alone: the page then says which one it
could not read instead of failing whole, since an outage is when the overview matters most.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from aiohttp import web

from messaging.rabbitmq import queue_depths
from middleware.circuit_breaker import queue_state_reads, read_states
from models.base import utcnow
from models.dao import notification_counts
from models.notification import CHANNELS, DELIVERED, FAILED, PENDING
from web.common import app_keys
from web.common.app import in_db
from web.console.chart import Chart, stacked_bars
from web.console.latency import LatencyWindow, Reading
from web.gateway.app_keys import publisher_key

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(hours=1)
INTERVAL_S = 300
#: Seconds each source may take before the page shows it as unavailable.
READ_TIMEOUT_S = 2.0


@dataclass
class Overview:
    since: dt.datetime
    channels: list[dict] = field(default_factory=list)
    chart: Chart | None = None
    depths: dict[str, int] | None = None
    breakers: dict[str, str] | None = None
    latency: Reading | None = None
    unavailable: list[str] = field(default_factory=list)


def _counts(since: dt.datetime) -> tuple[dict, list]:
    count = int(WINDOW.total_seconds()) // INTERVAL_S
    return (
        notification_counts.by_channel_and_status(since),
        notification_counts.by_interval(since, interval_s=INTERVAL_S, count=count),
    )


def _channel_rows(totals: dict[tuple[str, str], int]) -> list[dict]:
    rows = []
    for channel in CHANNELS:
        mine = {status: n for (kind, status), n in totals.items() if kind == channel}
        rows.append(
            {
                "channel": channel,
                "accepted": sum(mine.values()),
                "delivered": mine.get(DELIVERED, 0),
                "failed": mine.get(FAILED, 0),
                "pending": mine.get(PENDING, 0),
            }
        )
    return rows


def _layers(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    out = {"delivered": 0, "failed": 0, "pending": 0}
    for (_, status), n in counts.items():
        if status in out:
            out[status] += n
    return out


async def _read_counts(gateway: web.Application, overview: Overview) -> None:
    totals, series = await asyncio.wait_for(in_db(gateway, _counts, overview.since), READ_TIMEOUT_S)
    overview.channels = _channel_rows(totals)
    overview.chart = stacked_bars([_layers(c) for c in series], start=overview.since, interval_s=INTERVAL_S)


async def _read_depths(gateway: web.Application, overview: Overview) -> None:
    publisher = gateway[publisher_key]
    if not publisher.ready:
        raise LookupError("the publisher has not declared the topology yet")
    overview.depths = await asyncio.wait_for(publisher.run(queue_depths, publisher.broker), READ_TIMEOUT_S)


async def _read_breakers(gateway: web.Application, overview: Overview) -> None:
    pipe = gateway[app_keys.redis_key].pipeline(transaction=False)
    queue_state_reads(pipe, gateway[app_keys.redis_keys_key])
    overview.breakers = read_states(await asyncio.wait_for(pipe.execute(), READ_TIMEOUT_S))


async def collect(gateway: web.Application, latency: LatencyWindow) -> Overview:
    """Everything the overview shows, read at once; a source that fails is named in ``unavailable``."""
    now = utcnow()
    since = (now - WINDOW).replace(second=0, microsecond=0)
    since -= dt.timedelta(minutes=since.minute % (INTERVAL_S // 60))
    since += dt.timedelta(seconds=INTERVAL_S)  # twelve whole windows, the last one still filling
    overview = Overview(since=since, latency=latency.reading())
    sources = {
        "PostgreSQL (counts)": _read_counts,
        "RabbitMQ (queue depths)": _read_depths,
        "Redis (breakers)": _read_breakers,
    }
    results = await asyncio.gather(*(read(gateway, overview) for read in sources.values()), return_exceptions=True)
    for name, result in zip(sources, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("console overview: %s unavailable: %s", name, type(result).__name__)
            overview.unavailable.append(name)
    return overview
