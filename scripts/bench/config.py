"""What ``make bench`` loads and for how long; each figure can be changed by a ``BENCH_*`` variable.

Every load is bounded in count and time (README, "Benchmarks"): wrk runs for a fixed number of
seconds, every drain stops at a fixed count or at its deadline, and every slow-provider window has
a fixed length. The defaults keep the whole run within about 15 minutes on the 2-core machine.
"""

from __future__ import annotations

import os


def _ints(name: str, default: str) -> tuple[int, ...]:
    return tuple(int(x) for x in os.environ.get(name, default).split(","))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


#: Offered concurrency of the gateway curve (wrk connections), each run against the floor and the gateway.
CONCURRENCIES = _ints("BENCH_CONCURRENCIES", "10,50,100,200")
#: Seconds of each wrk run; the gateway gets a warm-up first.
DURATION_S = _int("BENCH_DURATION_S", 10)
WARMUP_S = _int("BENCH_WARMUP_S", 3)
#: The concurrency whose CPU split and latency the README quotes.
REFERENCE_CONCURRENCY = _int("BENCH_REFERENCE_CONCURRENCY", 50)
#: Sends per request of the batch run, and its connections; its reference is single sends at the
#: reference concurrency, measured just before it.
BATCH_SIZES = _ints("BENCH_BATCH_SIZES", "100,1000")
BATCH_CONNECTIONS = _int("BENCH_BATCH_CONNECTIONS", 4)
USERS = _int("BENCH_USERS_COUNT", 40)
WEB_PROCESSES = _int("BENCH_WEB_PROCESSES", 2)
PREFETCH_MARGIN = _int("BENCH_WORKER_PREFETCH_MARGIN", 0)

#: Messages each drain delivers (Herald's workers and the thinnest worker alike).
DRAIN_MESSAGES = _int("BENCH_DRAIN_MESSAGES", 4000)
DRAIN_TIMEOUT_S = _int("BENCH_DRAIN_TIMEOUT_S", 120)
#: Worker processes of the delivery curve; threads per process throughout.
WORKER_PROCESSES = _ints("BENCH_WORKER_PROCESSES", "1,2,4")
WORKER_THREADS = _int("BENCH_WORKER_THREADS", 8)
#: The reference configuration: 2 processes x 8 threads, for Herald and the thinnest worker.
REFERENCE_PROCESSES = 2
#: The thinnest worker's queue (on the bench's vhost) and actor.
FLOOR_QUEUE = "bench_floor"
FLOOR_ACTOR = "send_fixed_mail"

#: Provider latencies (ms) of the slow-provider curve and the threads per process tried at each;
#: always 2 processes. 0 ms is the smtp-sink drain of the delivery curve.
SLOW_LATENCIES_MS = _ints("BENCH_SLOW_LATENCIES_MS", "200,1000")
SLOW_THREADS = _ints("BENCH_SLOW_THREADS", "8,32")
SLOW_WINDOW_S = _int("BENCH_SLOW_WINDOW_S", 15)

#: BENCH_PROFILE=1: an extra gateway run and an extra drain under py-spy (see ``profile.py``).
PROFILE = os.environ.get("BENCH_PROFILE", "") == "1"

#: Seconds of the quiet window at the start: the machine's load from other work, before ours.
QUIET_S = _int("BENCH_QUIET_S", 5)
