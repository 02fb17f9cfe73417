"""The delivery curves of ``make bench``: mails per second against worker processes and provider latency.

Herald's workers drain the backlog the gateway curve accepted; the thinnest worker
(``floor_worker.py``) drains the same number of its own messages from the same vhost into the same
kind of sink, right before, at the same processes and threads: Herald's rate is printed as a ratio
to it. Against a slow provider the reference is the thread bound, processes x threads / latency.
Rates are counted at the sink, from a tenth of the messages on, so worker start-up is not in them
(README, "Benchmarks").
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pika
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from messaging.rabbitmq import message_count
from scripts.bench import config, proc, profile
from scripts.bench.gateway import wrk
from scripts.bench.sinks import Sink, sink
from scripts.bench.stack import Herald, delivered
from tests.support.ports import free_port
from tests.support.processes import BIN, herald_process, wait_for

QUEUE = "email.queue"
_runs = itertools.count()


def backlog(herald: Herald) -> int:
    """Ready messages in Herald's e-mail queue."""
    conn = pika.BlockingConnection(pika.URLParameters(herald.amqp_url))
    try:
        return message_count(conn.channel(), QUEUE)
    finally:
        conn.close()


def top_up(herald: Herald, need: int, accept_per_s: float, progress) -> int:
    """Accept more sends (wrk, bounded to a minute a round, three rounds) until ``need`` wait."""
    have = backlog(herald)
    for _ in range(3):
        if have >= need:
            break
        seconds = min(60, math.ceil((need - have) / max(accept_per_s, 50) * 1.2) + 1)
        progress(f"delivery: topping up the backlog ({have:,} of {need:,}), wrk for {seconds} s")
        wrk(
            herald.gateway,
            herald.lua_env,
            connections=config.REFERENCE_CONCURRENCY,
            duration=seconds,
            run=f"t{next(_runs)}",
        )
        have = backlog(herald)
    return have


@contextmanager
def workers(herald: Herald, sink_: Sink, processes: int, threads: int):
    """``dramatiq actors`` as the README starts the e-mail workers, metrics on a port of their own."""
    tag = f"{processes}x{threads}-{sink_.latency_ms}ms"
    prom = herald.logs / f"prom-{tag}"
    prom.mkdir(exist_ok=True)
    env = {**herald.env, "SMTP_PORT": str(sink_.port), "dramatiq_prom_port": str(free_port())}
    env |= {"dramatiq_prom_host": "127.0.0.1", "dramatiq_prom_db": str(prom), "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    args = [str(BIN / "dramatiq"), "actors", "--processes", str(processes), "--threads", str(threads)]
    with herald_process([*args, "--queues", QUEUE], env, herald.logs / f"worker-{tag}.log") as worker:
        try:
            yield worker
        finally:
            graceful_stop(worker)


def graceful_stop(worker: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to dramatiq's main process only, which stops its worker processes once: they finish
    the messages in hand and give back the prefetched ones. (A signal to the whole process group
    reaches each worker process twice, and dramatiq takes a second signal as "kill now", which
    would cut sends short and leave mails the provider took unrecorded.)"""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=timeout)


@contextmanager
def floor_workers(herald: Herald, sink_: Sink, processes: int, threads: int):
    env = {"BENCH_FLOOR_AMQP_URL": herald.amqp_url, "BENCH_FLOOR_SMTP_PORT": str(sink_.port)}
    args = [str(BIN / "dramatiq"), "scripts.bench.floor_worker", "--processes", str(processes), "--threads"]
    with herald_process([*args, str(threads)], env, herald.logs / f"floor-{processes}x{threads}.log") as worker:
        try:
            yield worker
        finally:
            graceful_stop(worker)


def enqueue_floor(herald: Herald, n: int) -> None:
    broker = RabbitmqBroker(url=herald.amqp_url, middleware=[])
    try:
        broker.declare_queue(config.FLOOR_QUEUE, ensure=True)
        broker.channel.queue_purge(config.FLOOR_QUEUE)
        for _ in range(n):
            broker.enqueue(
                Message(queue_name=config.FLOOR_QUEUE, actor_name=config.FLOOR_ACTOR, args=(), kwargs={}, options={})
            )
        wait_for(
            lambda: message_count(broker.channel, config.FLOOR_QUEUE) >= n, timeout=60, what="the floor's messages"
        )
    finally:
        broker.close()


def _count_to(herald: Herald, sink_: Sink, n: int, roots: dict[str, int]) -> dict:
    """Poll the sink until it has ``n`` mails (or the drain's deadline); the rate and the CPU of
    every process are taken from the tenth mail on."""
    started, mark, first = time.monotonic(), max(1, n // 10), None
    deadline, at_mark, before = started + config.DRAIN_TIMEOUT_S, None, None
    count = 0
    while time.monotonic() < deadline:
        count, now = sink_.count(), time.monotonic()
        first = first or (now if count else None)
        if at_mark is None and count >= mark:
            at_mark, before = (now, count), proc.snapshot(roots, herald.backends())
        if count >= n:
            break
        time.sleep(0.05)
    end = time.monotonic()
    backends = herald.backends()
    window = proc.spent(before, proc.snapshot(roots, backends)) if before else None
    per_s = (count - at_mark[1]) / (end - at_mark[0]) if at_mark and end > at_mark[0] else 0.0
    return {
        "messages": count,
        "complete": count >= n,
        "per_s": round(per_s, 1),
        "first_mail_after_s": round(first - started, 1) if first else None,
        "postgresql_connections": len(backends["postgresql"]),
        "cpu_ms_per_mail": proc.per_unit(window, count - at_mark[1], herald.background) if window else {},
        "window": window,
    }


def drain(herald: Herald, processes: int, threads: int, progress, *, floor: bool, spy: Path | None = None) -> dict:
    """``DRAIN_MESSAGES`` mails into a fresh smtp-sink, by the thinnest worker or by Herald's;
    with ``spy``, under py-spy, whose collapsed stacks go there."""
    n = config.DRAIN_MESSAGES
    who = "thinnest worker" if floor else "Herald"
    if floor:
        progress(f"delivery: enqueueing {n:,} messages for the thinnest worker")
        enqueue_floor(herald, n)
    progress(f"delivery: {who}, {processes} x {threads}, {n:,} mails into smtp-sink")
    start = floor_workers if floor else workers
    rows = delivered(herald.db_url)
    with sink(herald.logs) as sink_:
        with start(herald, sink_, processes, threads) as worker:
            sampler = None
            if spy:  # sampled once the workers are delivering, not while they start
                wait_for(lambda: sink_.count() >= n // 10, timeout=config.DRAIN_TIMEOUT_S, what="deliveries")
                sampler = profile.start(worker.pid, config.DRAIN_TIMEOUT_S, spy)
            result = _count_to(herald, sink_, n, {"workers": worker.pid, "sink": sink_.pid})
            if sampler:
                sampler.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
                sampler.wait(timeout=60)
            result["memory"] = proc.memory(worker.pid)
        result["sink_total"] = sink_.count()
    result |= {"processes": processes, "threads": threads, "sink": sink_.kind}
    if not floor:
        result["delivered_rows"] = delivered(herald.db_url) - rows
    progress.note(f"{who} {processes} x {threads}: {result['per_s']:,.0f} mails/s")
    return result


def slow(herald: Herald, latency_ms: int, threads: int, progress, processes: int = 2) -> dict:
    """Delivered/s over a fixed window against a provider answering DATA after ``latency_ms``, once
    every thread is busy, beside the thread bound."""
    bound = processes * threads * 1000 / latency_ms
    progress(f"slow provider: {latency_ms} ms, Herald {processes} x {threads} (bound {bound:,.0f}/s)")
    rows = delivered(herald.db_url)
    with sink(herald.logs, latency_ms) as sink_:
        with workers(herald, sink_, processes, threads) as worker:
            roots = {"workers": worker.pid, "sink": sink_.pid}
            wait_for(lambda: sink_.count() > 0, timeout=60, interval=0.1, what="a slow delivery")
            time.sleep(2 * latency_ms / 1000 + 1)  # every thread busy before the window opens
            before, base = proc.snapshot(roots, herald.backends()), sink_.count()
            time.sleep(config.SLOW_WINDOW_S)
            backends = herald.backends()
            window = proc.spent(before, proc.snapshot(roots, backends))
            mails = sink_.count() - base
            memory = proc.memory(worker.pid)
        left, total = backlog(herald), sink_.count()
    per_s = mails / window["wall_s"]
    sink_cpu = window["cpu_s"].get("sink", 0.0)
    result = {
        "latency_ms": latency_ms,
        "processes": processes,
        "threads": threads,
        "sink": sink_.kind,
        "per_s": round(per_s, 1),
        "bound_per_s": round(bound, 1),
        "ratio": round(per_s / bound, 3),
        "sink_cpu_share": round(sink_cpu / window["wall_s"], 3),
        "sink_mails_per_cpu_s": round(mails / sink_cpu) if sink_cpu else None,
        "backlog_left": left,
        "postgresql_connections": len(backends["postgresql"]),
        "sink_total": total,
        "delivered_rows": delivered(herald.db_url) - rows,
        "cpu_ms_per_mail": proc.per_unit(window, mails, herald.background),
        "memory": memory,
        "window": window,
    }
    progress.note(f"{per_s:,.1f} mails/s of a bound of {bound:,.0f}/s = {result['ratio']:.2f}")
    return result
