"""``make bench``: how fast Herald accepts and delivers on this machine, each figure beside its reference.

The machine's speed varies several-fold from hour to hour and other work shares it, so every
absolute figure is measured beside a physical reference in the same run and printed as a ratio
(README, "Benchmarks"):

1. quiet: a few seconds with Herald idle, the machine's load from other work;
2. the gateway curve (``gateway.py``): accepted/s, p50 and p99 at 10, 50, 100, 200 connections,
   each beside a bare aiohttp process answering the same POST, and the CPU per accepted send of
   every process; then batches of 100 and 1,000 sends beside single sends measured just before;
3. the delivery curve (``delivery.py``): Herald's workers at 1, 2, 4 processes x 8 threads, each
   beside the thinnest dramatiq + smtplib worker draining as many mails into the same C sink;
4. slow providers: 200 ms and 1 s, 8 and 32 threads, beside the thread bound.

Raw figures go to ``var/bench.json`` (and one line per run to ``var/bench-history.jsonl``), charts
to ``docs/bench/``, the summary to stdout, progress to stderr. Everything runs in a private
database, vhost and Redis prefix, dropped at the end, with every process stopped.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from scripts.bench import config, delivery, gateway, proc, profile, report, stack
from scripts.bench.progress import Progress
from scripts.bench.sinks import SMTP_SINK


def _deliveries(herald: stack.Herald, accept_per_s: float, progress) -> list[dict]:
    points = []
    for processes in config.WORKER_PROCESSES:
        delivery.top_up(herald, config.DRAIN_MESSAGES * 11 // 10, accept_per_s, progress)
        before = delivery.drain(herald, processes, config.WORKER_THREADS, progress, floor=True)
        mine = delivery.drain(herald, processes, config.WORKER_THREADS, progress, floor=False)
        after = delivery.drain(herald, processes, config.WORKER_THREADS, progress, floor=True)
        # The thinnest worker drains before and after Herald's: its rate is the mean of the two,
        # so a machine that speeds up or slows down meanwhile moves the reference with it.
        floor = {**before, "per_s": round((before["per_s"] + after["per_s"]) / 2, 1), "runs": [before, after]}
        ratio = round(mine["per_s"] / floor["per_s"], 3) if floor["per_s"] else None
        points.append({"processes": processes, "threads": config.WORKER_THREADS, "floor": floor, "herald": mine})
        points[-1]["ratio"] = ratio
        progress.note(f"Herald / thinnest worker at {processes} x {config.WORKER_THREADS}: {ratio}")
    return points


def _slow(herald: stack.Herald, deliveries: list[dict], accept_per_s: float, progress) -> list[dict]:
    """The latency curve: 0 ms (smtp-sink, beside the thinnest worker), then each slow provider."""
    ref = next(p for p in deliveries if p["processes"] == config.REFERENCE_PROCESSES)
    zero, drained_here = {config.WORKER_THREADS: ref["herald"]}, set()
    for threads in config.SLOW_THREADS:
        if threads not in zero:
            delivery.top_up(herald, config.DRAIN_MESSAGES * 11 // 10, accept_per_s, progress)
            zero[threads] = delivery.drain(herald, config.REFERENCE_PROCESSES, threads, progress, floor=False)
            drained_here.add(threads)
    floor = ref["floor"]["per_s"]
    points = [
        {
            "latency_ms": 0,
            "processes": config.REFERENCE_PROCESSES,
            "threads": threads,
            "per_s": zero[threads]["per_s"],
            "reference": "thinnest worker 2 x 8",
            "reference_per_s": floor,
            "ratio": round(zero[threads]["per_s"] / floor, 3) if floor else None,
            "sink": zero[threads]["sink"],
            "memory": zero[threads]["memory"],
            **({k: zero[threads][k] for k in ("sink_total", "delivered_rows")} if threads in drained_here else {}),
        }
        for threads in config.SLOW_THREADS
    ]
    cpu_rate = max(zero[t]["per_s"] for t in config.SLOW_THREADS) or 100
    for latency in config.SLOW_LATENCIES_MS:
        for threads in config.SLOW_THREADS:
            bound = config.REFERENCE_PROCESSES * threads * 1000 / latency
            need = math.ceil(min(bound, cpu_rate * 1.3) * (config.SLOW_WINDOW_S + 2 * latency / 1000 + 12))
            delivery.top_up(herald, need, accept_per_s, progress)
            point = delivery.slow(herald, latency, threads, progress, config.REFERENCE_PROCESSES)
            point |= {"reference": "thread bound", "reference_per_s": point["bound_per_s"]}
            points.append(point)
    return points


def _profile(herald: stack.Herald, accept_per_s: float, progress) -> dict:
    """py-spy on the gateway's processes during an extra wrk run of single sends and one of the
    largest batches, then on Herald's workers during an extra drain; none of these runs is among
    the reported figures."""
    found = {}
    seconds, c = config.DURATION_S, config.REFERENCE_CONCURRENCY
    progress(f"profile: py-spy on the gateway, {c} connections, {seconds} s")
    out = herald.logs / "profile-gateway.txt"
    herald.empty_queue()
    sampler = profile.start(herald.pids["gateway"], seconds + 1, out)
    time.sleep(1)  # py-spy attached before the load starts
    gateway.wrk(herald.gateway, herald.lua_env, connections=c, duration=seconds, run="p")
    sampler.wait(timeout=60)
    found["gateway"] = profile.summarise(out)
    size = max(config.BATCH_SIZES)
    progress(f"profile: py-spy on the gateway, batches of {size}, {config.BATCH_CONNECTIONS} connections, {seconds} s")
    out = herald.logs / "profile-batch.txt"
    herald.empty_queue()
    sampler = profile.start(herald.pids["gateway"], seconds + 1, out)
    time.sleep(1)
    gateway.wrk(
        herald.gateway, herald.lua_env, connections=config.BATCH_CONNECTIONS, duration=seconds, run="pb", batch=size
    )
    sampler.wait(timeout=60)
    found["batch"] = profile.summarise(out)
    delivery.top_up(herald, config.DRAIN_MESSAGES * 11 // 10, accept_per_s, progress)
    out = herald.logs / "profile-workers.txt"
    found["drain"] = delivery.drain(
        herald, config.REFERENCE_PROCESSES, config.WORKER_THREADS, progress, floor=False, spy=out
    )
    found["workers"] = profile.summarise(out)
    return found


def run(progress: Progress, logs: Path) -> dict:
    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "config": {k: getattr(config, k) for k in dir(config) if k.isupper()},
        "logs": str(logs),
    }
    with ExitStack() as resources:
        progress("setup: private database, vhost and Redis prefix; migrations; services; users")
        herald = stack.start(resources, logs)
        floor_url, floor_pid = gateway.start_floor(resources, logs)
        progress(f"quiet: {config.QUIET_S} s with Herald idle (the machine's load from other work)")
        before = proc.snapshot(herald.pids)
        time.sleep(config.QUIET_S)
        herald.background = results["quiet"] = proc.spent(before, proc.snapshot(herald.pids))
        results["gateway"] = gateway.curve(herald, floor_url, floor_pid, progress)
        results["batch"] = gateway.batches(herald, progress)
        results["memory"] = {**gateway.memory(herald), "http floor": proc.memory(floor_pid)}
        ref = next(p for p in results["gateway"] if p["connections"] == config.REFERENCE_CONCURRENCY)
        accept = ref["gateway"]["accepted_per_s"]
        results["delivery"] = _deliveries(herald, accept, progress)
        results["latency"] = _slow(herald, results["delivery"], accept, progress)
        if config.PROFILE and profile.available():
            results["profile"] = _profile(herald, accept, progress)
        results["accepted"] = sum(p["gateway"]["accepted"] for p in results["gateway"])
        results["statuses"] = stack.statuses(herald.db_url)
        progress("teardown: stopping every process; dropping the database, vhost and Redis keys")
    return results


def main() -> None:
    missing = [name for name, path in (("wrk", shutil.which("wrk")), ("smtp-sink", SMTP_SINK)) if not path]
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}; install with: apt-get install wrk postfix")
    progress = Progress()
    logs = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    try:
        results = run(progress, logs)
        results["elapsed_s"] = round(progress.elapsed())
        progress("charts: docs/bench/*.png")
        report.save(results)
        charts = report.draw_charts(results)
    finally:
        progress.close()
    print(report.summary(results, charts))


if __name__ == "__main__":
    main()
