"""The charts of ``make bench`` (``docs/bench/*.png``, shown in the README's "Benchmarks").

Curves, each beside its reference from the same run: the gateway against the bare aiohttp
floor, Herald's workers against the thinnest worker and against the thread bound; then where the
CPU goes per send and per mail, and the memory of each process.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from scripts.bench import config

HERALD, FLOOR, BOUND = "tab:blue", "tab:gray", "tab:red"
SHARES = ("gateway", "workers", "rabbitmq", "postgresql", "redis", "users", "templates", "sink", "load generator")


def _plain(ax) -> None:
    """Log axes labelled 1, 2, 5, 10, 20... in plain numbers, no minor labels."""
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path.relative_to(path.parents[2]))


def _gateway(results: dict, path: Path) -> str:
    points = results["gateway"]
    conns = [p["connections"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    accepted = [p["gateway"]["accepted_per_s"] for p in points]
    left.plot(conns, [p["floor"]["rps"] for p in points], "o--", color=FLOOR, label="bare aiohttp floor, req/s")
    left.plot(conns, accepted, "o-", color=HERALD, label=f"Herald accepted/s (WEB_PROCESSES={config.WEB_PROCESSES})")
    for x, y, p in zip(conns, accepted, points, strict=True):
        left.annotate(f"{p['ratio']:.3f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    left.set(xscale="log", yscale="log", xlabel="offered concurrency (wrk connections)", ylabel="per second")
    left.set_ylim(bottom=min(accepted) / 1.6)
    left.set_title("Accepted sends; labels: ratio to the floor", fontsize=10)
    for key, style in (("p50_ms", "o-"), ("p99_ms", "s-")):
        right.plot(conns, [p["gateway"][key] for p in points], style, color=HERALD, label=f"Herald {key[:3]}")
        right.plot(conns, [p["floor"][key] for p in points], style.replace("-", "--"), color=FLOOR,
                   label=f"floor {key[:3]}")  # fmt: skip
    right.set(xscale="log", yscale="log", xlabel="offered concurrency (wrk connections)", ylabel="ms")
    right.set_title("Latency", fontsize=10)
    for ax in (left, right):
        _plain(ax)
        ax.set_xticks(conns, [str(c) for c in conns])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Gateway, {results['started']} ({results['cores']} cores, everything co-located)", fontsize=10)
    return _save(fig, path)


def _delivery(results: dict, path: Path) -> str:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    points = results["delivery"]
    procs = [p["processes"] for p in points]
    herald = [p["herald"]["per_s"] for p in points]
    left.plot(
        procs, [p["floor"]["per_s"] for p in points], "o--", color=FLOOR, label="thinnest worker (dramatiq + smtplib)"
    )
    left.plot(procs, herald, "o-", color=HERALD, label="Herald workers")
    for x, y, p in zip(procs, herald, points, strict=True):
        left.annotate(
            f"{p['ratio'] or 0:.2f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8
        )
    left.set(xlabel=f"worker processes (x {config.WORKER_THREADS} threads)", ylabel="mails/s", ylim=(0, None))
    left.set_xticks(procs)
    left.set_title(f"Into smtp-sink, {config.DRAIN_MESSAGES:,} mails each; labels: ratio", fontsize=10)
    latency = results["latency"]
    for threads, marker, dy in zip(config.SLOW_THREADS, "os^", (-12, 6, 16), strict=False):
        mine = sorted((p for p in latency if p["threads"] == threads), key=lambda p: p["latency_ms"])
        xs = [max(p["latency_ms"], 50) for p in mine]
        ys = [p["per_s"] for p in mine]
        right.plot(xs, ys, marker + "-", label=f"Herald 2 x {threads}")
        slow = [p for p in mine if p["latency_ms"]]
        right.plot([max(p["latency_ms"], 50) for p in slow], [p["bound_per_s"] for p in slow], marker + ":",
                   color=BOUND, alpha=0.6, label=f"bound 2 x {threads} / latency")  # fmt: skip
        for x, y, p in zip(xs, ys, mine, strict=True):
            right.annotate(f"{p['ratio'] or 0:.2f}", (x, y), textcoords="offset points", xytext=(6, dy), fontsize=8)
    floor = latency[0]["reference_per_s"]
    right.plot([50], [floor], "D", color=FLOOR, label="thinnest worker 2 x 8")
    ticks = sorted({max(p["latency_ms"], 50) for p in latency})
    right.set(xscale="log", yscale="log", xlabel="provider latency (ms; 0 drawn at 50)", ylabel="mails/s")
    right.set_ylim(bottom=min(p["per_s"] for p in latency) / 1.6)
    _plain(right)
    right.set_xticks(ticks, ["0" if t == 50 else str(t) for t in ticks])
    right.set_title("Against provider latency (2 processes); labels: ratio to reference", fontsize=10)
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Delivery, {results['started']}", fontsize=10)
    return _save(fig, path)


def _stacked(ax, labels: list[str], splits: list[dict[str, float]], xlabel: str) -> None:
    left = [0.0] * len(labels)
    for share in SHARES:
        values = [s.get(share, 0.0) for s in splits]
        if any(v >= 0.005 for v in values):
            ax.barh(labels, values, left=left, label=share)
            left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(True, axis="x", alpha=0.3)


def _cpu(results: dict, path: Path) -> str:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5.5))
    points = results["gateway"]
    _stacked(top, [f"{p['connections']} conns" for p in points], [p["cpu_ms_per_send"] for p in points],
             "CPU ms per accepted send (shared services net of their idle rate)")  # fmt: skip
    top.set_title("Gateway: where the time goes, per accepted send", fontsize=10)
    ref = next(p for p in results["delivery"] if p["processes"] == config.REFERENCE_PROCESSES)
    labels = [f"Herald 2 x {config.WORKER_THREADS}", f"thinnest 2 x {config.WORKER_THREADS}"]
    _stacked(bottom, labels, [ref["herald"]["cpu_ms_per_mail"], ref["floor"]["cpu_ms_per_mail"]], "CPU ms per mail")
    bottom.set_title("Delivery into smtp-sink: where the time goes, per mail", fontsize=10)
    return _save(fig, path)


def _memory(results: dict, path: Path) -> str:
    rows: list[tuple[str, float]] = []

    def add(label: str, processes: list[dict]) -> None:
        workers = label.startswith(("Herald workers", "thinnest"))
        for i, p in enumerate(processes):
            if p["root"]:
                name = "dramatiq parent" if workers else "parent"
            elif workers and p["threads"] <= 2:
                name = "metrics exposition"
            else:
                name = f"process {i}"
            rows.append((f"{label}: {name}", p["rss_mib"]))

    for role in ("gateway", "users", "templates", "http floor"):
        add(role, results["memory"].get(role, []))
    ref = next(p for p in results["delivery"] if p["processes"] == config.REFERENCE_PROCESSES)
    add(f"Herald workers 2 x {config.WORKER_THREADS}", ref["herald"]["memory"])
    for p in results["latency"]:
        if p["latency_ms"] == 0 and p["threads"] != config.WORKER_THREADS:
            add(f"Herald workers 2 x {p['threads']}", p["memory"])
    add(f"thinnest 2 x {config.WORKER_THREADS}", ref["floor"]["memory"])
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.2))
    ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color=HERALD)
    ax.set_xlabel("VmRSS after the run, MiB (one bar per process)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"Resident memory per process, {results['started']}", fontsize=10)
    return _save(fig, path)


def draw(results: dict, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _gateway(results, directory / "gateway.png"),
        _delivery(results, directory / "delivery.png"),
        _cpu(results, directory / "cpu.png"),
        _memory(results, directory / "memory.png"),
    ]
