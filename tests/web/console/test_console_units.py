"""The console's pure parts: the p95 estimate and its hour of snapshots, the chart's layout, the
diff, the sample variables, the masked push token and the UTC format."""

from __future__ import annotations

import datetime as dt
import math

from prometheus_client import CollectorRegistry, Histogram

from web.common.metrics import LATENCY_BUCKETS
from web.console.app import utc
from web.console.chart import HEIGHT, stacked_bars
from web.console.latency import WINDOW_S, LatencyWindow, quantile
from web.console.template_tools import diff_lines, parse_variables, sample_variables
from web.console.views.users import mask_token


def test_quantile_interpolates_within_the_bucket_like_histogram_quantile():
    # 100 observations: 50 under 10 ms, 40 more under 25 ms, 10 more under 50 ms
    buckets = {0.01: 50, 0.025: 90, 0.05: 100, math.inf: 100}
    p95, above = quantile(0.95, buckets)
    assert not above and math.isclose(p95, 0.025 + 0.025 * 5 / 10)
    assert quantile(0.5, buckets) == (0.01, False)
    assert quantile(0.95, {0.01: 0, math.inf: 0}) == (None, False)
    assert quantile(0.95, {0.01: 1, 5.0: 1, math.inf: 10}) == (5.0, True), "past the last bound"


def histogram():
    registry = CollectorRegistry()
    latency = Histogram(
        "herald_http_request_duration_seconds", "x", ["method", "route"], registry=registry, buckets=LATENCY_BUCKETS
    )
    return registry, latency


def test_the_window_counts_only_the_last_hour_of_sends_on_both_route_spellings():
    registry, latency = histogram()
    window = LatencyWindow(registry)
    start = window.snapshots[0][0]
    for _ in range(100):
        latency.labels("POST", "/api/v1/notifications").observe(2.0)  # slow, and soon more than an hour old
    for minute in range(1, 61):
        window.sample(start + minute * 60)
    assert window.reading(start + 3600).count == 100, "within the hour"
    for minute in (61, 62):
        window.sample(start + minute * 60)
    for _ in range(10):
        latency.labels("POST", "/api/v1/notifications/").observe(0.004)
        latency.labels("GET", "/api/v1/notifications").observe(3.0)  # not a send
    reading = window.reading(start + 62 * 60)
    assert len(window.snapshots) == 61, "an hour of minutes, plus the base"
    assert reading.window_s == WINDOW_S
    assert reading.count == 10 and reading.p95_s is not None and reading.p95_s <= 0.005


def test_a_fresh_window_covers_the_time_since_it_started():
    registry, latency = histogram()
    window = LatencyWindow(registry)
    latency.labels("POST", "/api/v1/notifications").observe(0.2)
    reading = window.reading(window.snapshots[0][0] + 90)
    assert (reading.count, reading.window_s) == (1, 90) and 0.1 < reading.p95_s <= 0.25


def test_the_chart_stacks_each_interval_and_labels_every_bar():
    start = dt.datetime(2025, 1, 2, 12, 0)
    series = [{"delivered": 3, "failed": 1, "pending": 0}] + [{}] * 10 + [{"pending": 7}]
    chart = stacked_bars(series, start=start, interval_s=300)
    assert [b.layer for b in chart.bars] == ["delivered", "failed", "pending"]
    delivered, failed, pending = chart.bars
    assert math.isclose(delivered.y, failed.y + failed.height, abs_tol=0.2), "failed sits on delivered"
    assert delivered.y + delivered.height == HEIGHT - 26
    assert [t.label for t in chart.y_ticks] == ["0", "5", "10"], "a round top above the highest stack (7)"
    assert pending.title == "12:55 UTC: 7 pending" and delivered.title == "12:00 UTC: 3 delivered"
    assert [t.label for t in chart.x_ticks] == ["12:00", "12:15", "12:30", "12:45"]
    assert "11 notifications accepted since 12:00 UTC" in chart.summary
    assert stacked_bars([{}] * 12, start=start, interval_s=300).bars == []


def test_the_diff_marks_added_and_removed_lines_with_context():
    lines = diff_lines("a\nb\nc\n", "a\nB\nc\nd\n")
    assert [(line.kind, line.text) for line in lines if line.kind != "hunk"] == [
        ("same", "a"),
        ("del", "b"),
        ("add", "B"),
        ("same", "c"),
        ("add", "d"),
    ]
    assert lines[0].kind == "hunk" and diff_lines("same", "same") == []


def test_sample_variables_name_what_the_template_uses():
    sample = sample_variables("Hi {{ first_name }}", "<a href='{{ link }}'>{% for i in items %}{{ i }}{% endfor %}</a>")
    assert parse_variables(sample) == {"first_name": "First Name", "items": "Items", "link": "https://example.com"}
    assert sample_variables("{% if %}", "") == "{}"
    assert parse_variables("  ") == {}


def test_a_push_token_is_masked_to_its_last_six_characters():
    assert mask_token("abcdefghijklmnopqrstuvwxyz") == "••••••uvwxyz"
    assert mask_token(None) is None and mask_token("") is None


def test_times_are_shown_in_utc_with_the_zone():
    assert utc(dt.datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02 03:04:05 UTC"
    assert utc("2025-01-02T03:04:05.123Z") == "2025-01-02 03:04:05 UTC"
    paris = dt.timezone(dt.timedelta(hours=1))
    assert utc(dt.datetime(2025, 1, 2, 4, 4, tzinfo=paris), False) == "2025-01-02 03:04 UTC"
    assert utc(None) == "—"
