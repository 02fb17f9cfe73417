"""The dashboards and alert rules only query metrics the code exports, and the metrics count.

Exported names come from the real registries (the three apps, the worker instruments) and from
dramatiq's Prometheus middleware source, so a renamed metric breaks this test, not a dashboard.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from messaging.messages import BACKOFF, EVENT_CREATED_AT, OUTAGE, RECORDED, WEBHOOK_ID
from middleware import metrics as worker_metrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
TITLES = {"System Overview", "Queue Metrics", "Service Health", "Error Rates"}
#: Series Prometheus makes itself, for every target.
BUILTIN = {"up"}
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels
    (in matchers or grouping clauses), durations or Grafana variables."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\w+", " ", s)
    found = re.findall(r"(?<![\w.:$])([A-Za-z_:][\w:]*)\b(?!\s*\()", s)
    return {name for name in found if name.lower() not in _KEYWORDS}


def base_name(name: str, histograms: set[str]) -> str:
    for suffix in _HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return name


def exported(registry) -> tuple[set[str], set[str]]:
    """(names as queried, histogram base names) of every family in ``registry``."""
    names, histograms = set(), set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        else:
            names.add(family.name)
        if family.type == "histogram":
            histograms.add(family.name)
    return names, histograms


def dramatiq_exported() -> tuple[set[str], set[str]]:
    from dramatiq.middleware import prometheus

    found = re.findall(r'prom\.(Counter|Gauge|Histogram)\(\s*"(\w+)"', inspect.getsource(prometheus))
    assert len(found) >= 7, found
    return {n for _, n in found}, {n for kind, n in found if kind == "Histogram"}


def dashboard_queries() -> list[tuple[str, str]]:
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.append((f"{path.name}: {panel['title']}", target["expr"]))
    return out


def rule_queries() -> list[tuple[str, str]]:
    """(alert, expr) from alerts.yml; a line reader, as no YAML library is a dependency. An ``expr``
    is either on its line or a ``|`` block of the lines indented deeper than the key."""
    out, alert, lines = [], None, ALERTS.read_text().splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"\s*- alert: (\S+)", line):
            alert = m.group(1)
        elif m := re.match(r"(\s*)expr: (.*)$", line):
            indent, value = len(m.group(1)), m.group(2).strip()
            if value == "|":
                block = []
                for nxt in lines[i + 1 :]:
                    if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                        break
                    block.append(nxt)
                value = "\n".join(block)
            out.append((f"alerts.yml: {alert}", value))
    assert len(out) == len(re.findall(r"- alert:", ALERTS.read_text()))
    return out


def test_promql_names_are_parsed():
    expr = (
        'histogram_quantile(0.95, sum by (le, job) (rate(x_seconds_bucket{job="gateway", route!~"/a|b"}'
        "[$__rate_interval]))) / ignoring(job) (y_total or vector(0)) * 60 > bool 0.5 and on (q) up"
    )
    assert metric_names(expr) == {"x_seconds_bucket", "y_total", "up"}


def test_dashboards_are_valid_json_with_the_four_titles():
    boards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    assert {b["title"] for b in boards} == TITLES
    assert len({b["uid"] for b in boards}) == 4
    for board in boards:
        assert board["panels"], board["title"]
        for panel in board["panels"]:
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == "prometheus"


async def test_every_queried_metric_is_exported(settings):
    from web.common.app_keys import metrics_key
    from web.gateway.app import create_app as gateway_app
    from web.templates.app import create_app as templates_app
    from web.users.app import create_app as users_app

    names, histograms = set(BUILTIN), set()
    registries = [create(settings)[metrics_key].registry for create in (gateway_app, users_app, templates_app)]
    registries.append(worker_metrics._Instruments(registry=CollectorRegistry()).registry)
    for registry in registries:
        more, hist = exported(registry)
        names |= more
        histograms |= hist
    more, hist = dramatiq_exported()
    names |= more
    histograms |= hist
    queries = dashboard_queries() + rule_queries()
    assert len(queries) > 30
    missing = {
        (where, name)
        for where, expr in queries
        for name in metric_names(expr)
        if base_name(name, histograms) not in names
    }
    assert not missing, sorted(missing)
    documented = (ROOT / "README.md").read_text()
    queried = {base_name(n, histograms) for _, expr in queries for n in metric_names(expr)} - BUILTIN
    assert not {n for n in queried if n not in documented}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_config_and_rules():
    result = subprocess.run([str(ROOT / "scripts" / "validate_observability.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _message(actor="send_email", body=None, **options):
    return SimpleNamespace(actor_name=actor, args=(body if body is not None else {},), options=options)


def _value(counter, channel):
    return counter.labels(channel)._value.get()


def test_worker_middleware_counts_outcomes_once_decided():
    mw = worker_metrics.WorkerMetrics()
    inst = mw.instruments
    body = {"notification_type": "push", "created_at": "2020-01-01T00:00:00Z"}
    recorded = {RECORDED: "delivered"}
    mw.after_process_message(None, _message("send_push", body, **recorded))
    mw.after_skip_message(None, _message("send_push", body, **recorded))  # a record-only copy
    mw.after_process_message(None, _message("send_push", body))  # recording deferred: not yet
    mw.after_skip_message(None, _message("send_push", body))  # dropped as already delivered
    mw.after_process_message(None, _message("send_push", body), exception=RuntimeError())
    mw.after_process_message(None, _message("send_push", body, retry_scheduled=BACKOFF), exception=RuntimeError())
    mw.after_process_message(None, _message("send_push", body, retry_scheduled=OUTAGE), exception=RuntimeError())
    mw.after_process_message(None, _message("purge_expired", {}), exception=RuntimeError())
    mw.after_skip_message(None, _message("send_push", body, **{RECORDED: "expired"}))
    counts = (_value(inst.delivered, "push"), _value(inst.failed, "push"), _value(inst.retries, "push"))
    assert counts == (2, 1, 1)
    assert inst.ended.labels("push", "expired")._value.get() == 1


def test_worker_middleware_counts_webhook_outcomes_per_webhook():
    mw = worker_metrics.WorkerMetrics()
    inst = mw.instruments
    options = {WEBHOOK_ID: "w-1", EVENT_CREATED_AT: "2020-01-01T00:00:00Z"}
    webhook = "deliver_webhook"
    mw.after_process_message(None, _message(webhook, "d-1", **options), result="succeeded")
    mw.after_process_message(None, _message(webhook, "d-2", **options))  # dropped: gone or already ended
    mw.after_process_message(None, _message(webhook, "d-3", **options, retry_scheduled=BACKOFF), exception=OSError())
    mw.after_process_message(None, _message(webhook, "d-4", **options, retry_scheduled=OUTAGE), exception=OSError())
    mw.after_process_message(None, _message(webhook, "d-5", **options), exception=OSError())
    counts = [c.labels("w-1")._value.get() for c in (inst.webhook_succeeded, inst.webhook_retries, inst.webhook_failed)]
    assert counts == [1, 1, 1]
    assert inst.webhook_latency._sum.get() > 0
    assert _value(inst.delivered, "email") == 0 and _value(inst.failed, "email") == 0, "not notifications"


def test_latency_since_reads_the_gateway_timestamp():
    assert worker_metrics.latency_since("1970-01-01T00:00:10Z", now=12.5) == 2.5
    assert worker_metrics.latency_since("1970-01-01T00:00:10.250000Z", now=10.5) == 0.25
    assert worker_metrics.latency_since("not a date") is None
    assert worker_metrics.latency_since(None) is None
    assert worker_metrics.latency_since("1970-01-01T00:00:10", now=12) is None  # no zone: unknowable


# --- the gateway's /metrics after real sends ---------------------------------------------------------


@pytest.fixture
def env(env):
    return {**env, "RATE_LIMIT_PER_HOUR": "1"}


def sample(text: str, name: str, **labels) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_gateway_metrics_count_sends_replays_and_refusals(stack):
    from web.common import app_keys

    user = await stack.create_user()
    template = await stack.create_template()
    body = {
        "notification_type": "email",
        "user_id": user["id"],
        "template_code": template["code"],
        "variables": {"name": "Ada", "link": "https://example.com/x"},
        "request_id": uuid.uuid4().hex,
    }
    assert (await stack.send(**body)).status == 202
    assert (await stack.send(**body)).status == 200  # replayed
    assert (await stack.send(**{**body, "variables": {"name": "Eve", "link": "https://example.com/x"}})).status == 409
    assert (await stack.send(**{**body, "request_id": uuid.uuid4().hex})).status == 429  # one per hour
    app = stack.client.app
    await app[app_keys.redis_key].hset(app[app_keys.redis_keys_key].circuit("smtp"), "state", "OPEN")
    resp = await stack.client.get("/metrics")
    assert resp.status == 200
    text = await resp.text()
    assert sample(text, "herald_notifications_accepted_total", channel="email") == 1
    assert sample(text, "herald_idempotency_hits_total", outcome="replayed") == 1
    assert sample(text, "herald_idempotency_hits_total", outcome="conflict") == 1
    assert sample(text, "herald_rate_limited_total", channel="email") == 1
    assert sample(text, "herald_circuit_breaker_state", provider="smtp") == 2
    assert sample(text, "herald_circuit_breaker_state", provider="fcm") == 0
    assert sample(text, "herald_queue_depth", queue="email.queue") >= 1  # nothing consumes it here
    assert sample(text, "herald_queue_depth", queue="failed.queue") is not None
    assert 'herald_http_requests_total{method="POST",route="/api/v1/notifications/",status="202"}' in text
