"""The results of ``make bench``: ``var/bench.json``, one history line per run, the summary table.

Each absolute figure is printed beside its reference from the same run and the ratio between
them, since only the ratios compare across runs on a machine whose speed varies (README,
"Benchmarks"). ``var/bench-history.jsonl`` keeps one line per run, so the spread between runs can
be read off.
"""

from __future__ import annotations

import json

from scripts.bench import config, proc
from tests.support.processes import ROOT

VAR = ROOT / "var"


def _ref(points: list[dict], key: str, value: int) -> dict:
    return next(p for p in points if p[key] == value)


def headline(results: dict) -> dict:
    """The figures a run is compared by, for the history file and the README."""
    g = _ref(results["gateway"], "connections", config.REFERENCE_CONCURRENCY)
    d = _ref(results["delivery"], "processes", config.REFERENCE_PROCESSES)
    line = {
        "started": results["started"],
        "elapsed_s": results.get("elapsed_s"),
        "machine_busy_cores_before": results["quiet"]["machine_busy_cores"],
        "steal_before": results["quiet"]["machine_steal_share"],
        "gateway": {
            str(p["connections"]): {
                "floor_rps": round(p["floor"]["rps"]),
                "accepted_per_s": round(p["gateway"]["accepted_per_s"]),
                "ratio": p["ratio"],
                "p50_ms": p["gateway"]["p50_ms"],
                "p99_ms": p["gateway"]["p99_ms"],
                "p99_floor_request_times": p["p99_floor_request_times"],
            }
            for p in results["gateway"]
        },
        "batch": {
            str(p["size"]): {
                "single_per_s": round(p["single"]["accepted_per_s"]),
                "batch_per_s": round(p["batch"]["accepted_per_s"]),
                "ratio": p["ratio"],
                **({"cpu_ms_per_item": p["cpu_ms_per_item"]} if "cpu_ms_per_item" in p else {}),
            }
            for p in results.get("batch", [])
        },
        "gateway_cpu_ms_per_send": g["cpu_ms_per_send"],
        "floor_cpu_ms_per_request": g.get("floor_cpu_ms_per_request"),
        "delivery": {
            f"{p['processes']}x{p['threads']}": {
                "floor_per_s": p["floor"]["per_s"],
                "herald_per_s": p["herald"]["per_s"],
                "ratio": p["ratio"],
            }
            for p in results["delivery"]
        },
        "delivery_cpu_ms_per_mail": {"herald": d["herald"]["cpu_ms_per_mail"], "floor": d["floor"]["cpu_ms_per_mail"]},
        "latency": {
            f"{p['latency_ms']}ms {p['processes']}x{p['threads']}": {
                "per_s": p["per_s"],
                "reference_per_s": p["reference_per_s"],
                "ratio": p["ratio"],
            }
            for p in results["latency"]
        },
    }
    return line


def save(results: dict) -> None:
    VAR.mkdir(exist_ok=True)
    (VAR / "bench.json").write_text(json.dumps(results, indent=2))
    with open(VAR / "bench-history.jsonl", "a") as history:
        history.write(json.dumps(headline(results)) + "\n")


def draw_charts(results: dict) -> list[str]:
    try:
        from scripts.bench import charts
    except ImportError as exc:  # matplotlib is a development dependency
        return [f"(no charts: {exc}; pip install -e '.[dev]')"]
    return charts.draw(results, ROOT / "docs" / "bench")


def _mib(processes: list[dict]) -> str:
    """``parent R; children R (T threads), ...``: a forking service's or dramatiq's tree."""
    if not processes:
        return "-"
    root = next(p for p in processes if p["root"])
    children = [f"{p['rss_mib']:.0f} ({p['threads']} thr)" for p in processes if not p["root"]]
    if not children:
        return f"{root['rss_mib']:.0f} ({root['threads']} thr)"
    return f"parent {root['rss_mib']:.0f}; children " + ", ".join(children)


def _cpu(split: dict[str, float]) -> str:
    order = ("gateway", "workers", "users", "templates", "rabbitmq", "postgresql", "redis", "sink", "load generator")
    return ", ".join(f"{k} {split[k]:.2f}" for k in order if split.get(k, 0) >= 0.005)


def _ceiling(units: str, split: dict[str, float], group: str, thinnest: float, reference: float, name: str) -> str:
    """What the cores allow at the measured cost, and if ``group`` cost only what the reference's
    own process does: the ratio no code in ``group`` can pass while the rest costs what it does."""
    at_cost, thin = proc.ceiling(split), proc.ceiling(split, **{group: thinnest})
    best = f" = {thin / reference:.2f} of the {name}" if reference else ""
    return (
        f"  the cores give {at_cost:,} {units}/s at this cost; {thin:,}/s{best} if Herald's {group}"
        f" cost only the {name}'s {thinnest:.2f} ms"
    )


def summary(results: dict, charts: list[str]) -> str:
    q = results["quiet"]
    minutes, seconds = divmod(results.get("elapsed_s", 0), 60)
    out = [
        "",
        f"Herald bench {results['started']}: {results['cores']} cores, {minutes} min {seconds:02d} s. Before it,"
        f" other work kept {q['machine_busy_cores']:.1f} cores busy, {q['machine_steal_share']:.0%} stolen.",
        "Every figure is beside its reference from the same run; the ratios compare across runs, the rest do not.",
        "",
        f"Gateway, POST /api/v1/notifications/ (WEB_PROCESSES={config.WEB_PROCESSES}) against one bare aiohttp"
        " process answering the same POST:",
        f"{'conns':>7}{'floor req/s':>13}{'accepted/s':>12}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'p99/floor req-time':>20}{'floor p99 ms':>14}  answers",
    ]
    for p in results["gateway"]:
        f, g = p["floor"], p["gateway"]
        out.append(
            f"{p['connections']:>7}{f['rps']:>13,.0f}{g['accepted_per_s']:>12,.0f}{p['ratio']:>8.3f}{g['p50_ms']:>9.1f}"
            f"{g['p99_ms']:>9.1f}{p['p99_floor_request_times']:>20,}{f['p99_ms']:>14.1f}  {g['statuses']}"
        )
    out += [
        "",
        f"Batch endpoint, {config.BATCH_CONNECTIONS} connections, against single sends at"
        f" {config.REFERENCE_CONCURRENCY} connections measured just before:",
        f"{'sends per batch':>16}{'single /s':>11}{'batch sends/s':>15}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}  answers",
    ]
    for p in results.get("batch", []):
        b = p["batch"]
        out.append(
            f"{p['size']:>16,}{p['single']['accepted_per_s']:>11,.0f}{b['accepted_per_s']:>15,.0f}"
            f"{p['ratio'] or 0:>8.2f}{b['p50_ms']:>9.0f}{b['p99_ms']:>9.0f}  {b['statuses']}"
            f", items not 202: {b['statuses'].get('200', 0) * p['size'] - b['accepted_items']:,}"
        )
    n = config.DRAIN_MESSAGES
    out += [
        "",
        f"Delivery into smtp-sink, {n:,} mails each, against the thinnest worker (bare dramatiq + smtplib),"
        " which drains before and after Herald's workers (its rate: the mean):",
        f"{'workers':>12}{'thinnest /s':>13}{'(before, after)':>17}{'Herald /s':>11}{'ratio':>8}",
    ]
    for p in results["delivery"]:
        runs = p["floor"].get("runs", [p["floor"]])
        ok = "" if all(r["complete"] for r in [p["herald"], *runs]) else "  (a drain hit its deadline)"
        pair = "(" + ", ".join(f"{r['per_s']:,.0f}" for r in runs) + ")"
        out.append(
            f"{p['processes']:>6} x {p['threads']:<3}{p['floor']['per_s']:>13,.0f}{pair:>17}"
            f"{p['herald']['per_s']:>11,.0f}{p['ratio'] or 0:>8.3f}{ok}"
        )
    out += ["", "Provider latency, Herald's workers, against the thread bound (processes x threads / latency):"]
    out.append(f"{'latency':>9}{'workers':>10}{'mails/s':>10}{'reference /s':>14}{'ratio':>8}  provider")
    for p in results["latency"]:
        ref = "thinnest 2x8" if p["latency_ms"] == 0 else "bound"
        sink = p["sink"]
        if p.get("sink_mails_per_cpu_s"):
            sink += f", {p['sink_cpu_share']:.0%} of a core: {p['sink_mails_per_cpu_s']:,} mails per CPU-s"
        out.append(
            f"{p['latency_ms']:>6} ms{p['processes']:>5} x {p['threads']:<3}{p['per_s']:>10,.1f}"
            f"{p['reference_per_s']:>9,.0f} {ref:<5}{p['ratio'] or 0:>7.2f}  {sink}"
        )
    g = _ref(results["gateway"], "connections", config.REFERENCE_CONCURRENCY)
    d = _ref(results["delivery"], "processes", config.REFERENCE_PROCESSES)
    out += [
        "",
        f"CPU ms per accepted send at {config.REFERENCE_CONCURRENCY} connections (shared services net of their idle"
        f" rate): {_cpu(g['cpu_ms_per_send'])}; the floor's per request: {g['floor_cpu_ms_per_request']:.2f}",
        _ceiling("sends", g["cpu_ms_per_send"], "gateway", g["floor_cpu_ms_per_request"], g["floor"]["rps"], "floor"),
        *(
            f"CPU ms per item, batches of {b['size']:,}: {_cpu(b['cpu_ms_per_item'])}; single sends just before:"
            f" {_cpu(b['single_cpu_ms_per_send'])}. The cores give {b['ceiling_per_s']['all']:,} items/s at this"
            f" cost, {b['ceiling_per_s']['without gateway']:,} if the gateway cost nothing"
            f" (5x the single sends: {5 * b['single']['accepted_per_s']:,.0f})"
            for b in results.get("batch", [])
            if "cpu_ms_per_item" in b
        ),
        f"CPU ms per mail, Herald 2 x {config.WORKER_THREADS}: {_cpu(d['herald']['cpu_ms_per_mail'])}",
        f"CPU ms per mail, thinnest 2 x {config.WORKER_THREADS}: {_cpu(d['floor']['cpu_ms_per_mail'])}",
        _ceiling(
            "mails",
            d["herald"]["cpu_ms_per_mail"],
            "workers",
            d["floor"]["cpu_ms_per_mail"].get("workers", 0.0),
            d["floor"]["per_s"],
            "thinnest worker",
        ),
        "",
        "Resident memory after the run (VmRSS, MiB):",
    ]
    memory = results["memory"]
    for role in ("gateway", "users", "templates", "http floor"):
        out.append(f"  {role:<34}{_mib(memory.get(role, []))}")
    for p in results["delivery"]:
        out.append(
            f"  {'Herald workers ' + str(p['processes']) + ' x ' + str(p['threads']):<34}{_mib(p['herald']['memory'])}"
        )
        out.append(f"  {'thinnest ' + str(p['processes']) + ' x ' + str(p['threads']):<34}{_mib(p['floor']['memory'])}")
    for p in results["latency"]:
        if p["latency_ms"] and p["threads"] != config.WORKER_THREADS:
            label = f"Herald workers 2 x {p['threads']} ({p['latency_ms']} ms)"
            out.append(f"  {label:<34}{_mib(p['memory'])}")
    s = results["statuses"]
    phases = [p["herald"] for p in results["delivery"]] + [p for p in results["latency"] if "delivered_rows" in p]
    phases += [results["profile"]["drain"]] if "profile" in results else []
    mails = sum(p["sink_total"] for p in phases)
    extra = [f"{p['sink_total'] - p['delivered_rows']:+}" for p in phases]
    for name, found in results.get("profile", {}).items():
        if name != "drain":
            out += ["", f"py-spy, {name} ({found['samples']:,} samples of the thread holding the GIL):"]
            for key in ("self_by_package", "inclusive_by_herald_module", "top_functions"):
                shares = ", ".join(f"{k} {v:.0%}" for k, v in list(found[key].items())[:8])
                out.append(f"  {key.replace('_', ' ')}: {shares}")
    out += [
        "",
        f"Integrity: {sum(s.values()):,} sends recorded; {s.get('delivered', 0):,} delivered rows for {mails:,} mails"
        f" at Herald's sinks; {s.get('failed', 0)} failed; {s.get('pending', 0):,} left pending (dropped after).",
        "  mails at the sink beyond the rows recorded delivered, per phase: " + " ".join(extra),
        "Raw figures: var/bench.json; one line per run: var/bench-history.jsonl; charts: " + ", ".join(charts),
    ]
    return "\n".join(out)
