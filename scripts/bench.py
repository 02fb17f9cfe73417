"""``make bench``: how fast Herald accepts and delivers, on this machine, with everything on it.

1. The ceiling: wrk against a minimal aiohttp endpoint (``scripts/bench_ceiling.py``).
2. Accepts: wrk against the real gateway (users and template services, PostgreSQL, Redis and
   RabbitMQ behind it), many users, a unique request id per request, fixed concurrency.
3. Deliveries: the accepted backlog drained by ``dramatiq actors`` into Postfix's ``smtp-sink``
   (a C sink, so the sink is not what is measured); the rate of ``delivered`` rows.

Everything runs in a private database, vhost and Redis prefix, dropped afterwards. Figures go to
stdout and ``var/bench.json``; the README quotes them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path

import psycopg2

from settings import Settings
from tests.support import resources
from tests.support.ports import free_port
from tests.support.processes import BIN, ROOT, herald_process, wait_for
from web.common.auth import issue_token

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "50"))
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "20"))
USERS = int(os.environ.get("BENCH_USERS_COUNT", "40"))
WORKER_PROCESSES = os.environ.get("BENCH_WORKER_PROCESSES", "2")
WORKER_THREADS = os.environ.get("BENCH_WORKER_THREADS", "8")
LUA = ROOT / "scripts" / "bench_send.lua"
#: The slow provider: a sink answering DATA after this many seconds, drained by this many workers.
SLOW_PROVIDER_S = int(os.environ.get("BENCH_SLOW_PROVIDER_S", "1"))
SLOW_WORKER_PROCESSES = int(os.environ.get("BENCH_SLOW_WORKER_PROCESSES", "2"))
SLOW_WORKER_THREADS = int(os.environ.get("BENCH_SLOW_WORKER_THREADS", "32"))
SLOW_WINDOW_S = int(os.environ.get("BENCH_SLOW_WINDOW_S", "20"))


def _api(url: str, body: dict | None = None, token: str | None = None, method: str = "POST") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - local
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - our own local service
        return json.loads(resp.read())


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as resp:  # noqa: S310
            return resp.status == 200
    except OSError:
        return False


def wrk(url: str, env: dict[str, str], *, duration: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{duration}s", "--timeout", "5s", "-s", str(LUA), url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    return json.loads(line.removeprefix("BENCH_JSON "))


def delivered_count(dsn_url: str) -> int:
    conn = psycopg2.connect(dsn_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM notification_status WHERE status = 'delivered'")
            return cur.fetchone()[0]
    finally:
        conn.close()


def main() -> None:
    missing = [
        tool for tool in ("wrk", "smtp-sink") if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}; install with: apt-get install wrk postfix")
    logs = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    results: dict = {"concurrency": CONCURRENCY, "duration_s": DURATION_S, "cores": os.cpu_count()}
    with ExitStack() as stack:
        db_url = stack.enter_context(resources.postgres_database())
        prefix = stack.enter_context(resources.redis_prefix())
        amqp_url, _ = stack.enter_context(resources.rabbit_vhost())
        ports = {name: free_port() for name in ("gateway", "users", "templates", "smtp", "ceiling")}
        env = {
            "DATABASE_URL": db_url,
            "REDIS_URL": resources.REDIS_URL,
            "REDIS_KEY_PREFIX": prefix,
            "RABBITMQ_URL": amqp_url,
            "JWT_SECRET": uuid.uuid4().hex * 2,
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_PER_HOUR": str(10**9),
            "GATEWAY_PORT": str(ports["gateway"]),
            "USERS_PORT": str(ports["users"]),
            "TEMPLATES_PORT": str(ports["templates"]),
            "USER_SERVICE_URL": f"http://127.0.0.1:{ports['users']}",
            "TEMPLATE_SERVICE_URL": f"http://127.0.0.1:{ports['templates']}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(ports["smtp"]),
            "HOST": "127.0.0.1",
            "WEB_PROCESSES": os.environ.get("BENCH_WEB_PROCESSES", "2"),
            "WORKER_PREFETCH_MARGIN": os.environ.get("BENCH_WORKER_PREFETCH_MARGIN", "0"),
        }
        settings = Settings.from_env(env)
        subprocess.run(
            [str(BIN / "python"), "-m", "scripts.migrate"],
            cwd=ROOT,
            check=True,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
        )
        for role in ("users", "templates", "gateway"):
            stack.enter_context(herald_process([str(BIN / "python"), "-m", f"web.{role}"], env, logs / f"{role}.log"))
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        wait_for(lambda: _healthy(gateway), timeout=30, what="the gateway's /health")

        admin = issue_token(settings, sub=str(uuid.uuid4()), role="admin")
        code = "bench-" + uuid.uuid4().hex[:6]
        _api(
            gateway + "/api/v1/templates/",
            {
                "code": code,
                "name": "Bench",
                "subject": "Hello {{ name }}",
                "content": "<p>Hello {{ name }}, see {{ link }}</p>",
            },
            admin,
        )
        users_file = logs / "users.txt"
        users_file.write_text(
            "\n".join(
                _api(
                    gateway + "/api/v1/users/",
                    {
                        "name": f"u{i}",
                        "email": f"bench{i}@example.com",
                        "password": "bench-password-1",
                        "preferences": {"email": True, "push": True},
                    },
                )["data"]["id"]
                for i in range(USERS)
            )
            + "\n"
        )
        lua_env = {"BENCH_USERS": str(users_file), "BENCH_TOKEN": admin, "BENCH_TEMPLATE": code}

        stack.enter_context(
            herald_process(
                [str(BIN / "python"), "scripts/bench_ceiling.py", str(ports["ceiling"])], {}, logs / "ceiling.log"
            )
        )
        ceiling_url = f"http://127.0.0.1:{ports['ceiling']}"
        wait_for(lambda: _port_open(ports["ceiling"]), timeout=20, what="the ceiling endpoint")
        results["ceiling"] = wrk(ceiling_url, {**lua_env, "BENCH_RUN": "ceiling"}, duration=DURATION_S)
        wrk(gateway, {**lua_env, "BENCH_RUN": "warmup"}, duration=3)
        results["gateway"] = wrk(gateway, {**lua_env, "BENCH_RUN": "run"}, duration=DURATION_S)

        sink = "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else "smtp-sink"
        time.sleep(2)  # let the last in-flight sends finish before counting the backlog
        results["slow_provider"] = slow_provider(env, db_url, sink, logs)
        stack.enter_context(
            herald_process([sink, "-u", "nobody", f"127.0.0.1:{ports['smtp']}", "1000"], {}, logs / "smtp-sink.log")
        )
        backlog, before = _count(db_url, "pending"), delivered_count(db_url)
        started = time.monotonic()
        stack.enter_context(
            herald_process(
                [
                    str(BIN / "dramatiq"),
                    "actors",
                    "--processes",
                    WORKER_PROCESSES,
                    "--threads",
                    WORKER_THREADS,
                    "--queues",
                    "email.queue",
                ],
                env,
                logs / "worker.log",
            )
        )
        first = wait_for(lambda: delivered_count(db_url) > before and time.monotonic(), timeout=60, what="a delivery")
        base = delivered_count(db_url)
        wait_for(lambda: _count(db_url, "pending") == 0, timeout=900, interval=0.5, what="the backlog to drain")
        done = time.monotonic()
        delivered = delivered_count(db_url)
        results["delivery"] = {
            "backlog": backlog,
            "delivered": delivered,
            "failed": _count(db_url, "failed"),
            "workers": f"{WORKER_PROCESSES} processes x {WORKER_THREADS} threads",
            "emails_per_s": round((delivered - base) / max(done - first, 1e-3), 1),
            "drain_s_incl_boot": round(done - started, 1),
        }
    _report(results)


def slow_provider(env: dict[str, str], db_url: str, sink: str, logs: Path) -> dict:
    """Delivered/s into a sink that waits SLOW_PROVIDER_S before answering DATA, as a remote relay
    does, beside the bound that latency sets: processes x threads / latency."""
    port = free_port()
    processes, threads = SLOW_WORKER_PROCESSES, SLOW_WORKER_THREADS
    with ExitStack() as stack:
        stack.enter_context(
            herald_process(
                [sink, "-u", "nobody", "-w", str(SLOW_PROVIDER_S), f"127.0.0.1:{port}", "1000"],
                {},
                logs / "smtp-sink-slow.log",
            )
        )
        wait_for(lambda: _port_open(port), timeout=20, what="the slow sink")
        stack.enter_context(
            herald_process(
                [
                    str(BIN / "dramatiq"),
                    "actors",
                    "--processes",
                    str(processes),
                    "--threads",
                    str(threads),
                    "--queues",
                    "email.queue",
                ],
                {**env, "SMTP_PORT": str(port)},
                logs / "worker-slow.log",
            )
        )
        wait_for(lambda: delivered_count(db_url) > 0, timeout=60, interval=0.2, what="a slow delivery")
        time.sleep(2 * SLOW_PROVIDER_S)  # every thread busy before the window opens
        base, started = delivered_count(db_url), time.monotonic()
        time.sleep(SLOW_WINDOW_S)
        rate = (delivered_count(db_url) - base) / (time.monotonic() - started)
    bound = processes * threads / SLOW_PROVIDER_S
    return {
        "latency_s": SLOW_PROVIDER_S,
        "workers": f"{processes} processes x {threads} threads",
        "emails_per_s": round(rate, 1),
        "bound_per_s": bound,
        "ratio": round(rate / bound, 2),
    }


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _count(db_url: str, status: str) -> int:
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM notification_status WHERE status = %s", (status,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def _report(results: dict) -> None:
    Path("var").mkdir(exist_ok=True)
    Path("var/bench.json").write_text(json.dumps(results, indent=2))
    c, g, d = results["ceiling"], results["gateway"], results["delivery"]
    print(f"\nHerald bench: {results['cores']} cores, {results['concurrency']} concurrent, {results['duration_s']} s")
    print(f"{'':28}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  statuses")
    print(
        f"{'ceiling (bare aiohttp)':28}{c['rps']:>10.0f}{c['p50_ms']:>9.1f}{c['p95_ms']:>9.1f}{c['p99_ms']:>9.1f}"
        f"  {c['statuses']}"
    )
    print(
        f"{'gateway POST /notifications':28}{g['rps']:>10.0f}{g['p50_ms']:>9.1f}{g['p95_ms']:>9.1f}"
        f"{g['p99_ms']:>9.1f}  {g['statuses']}"
    )
    slow = results["slow_provider"]
    print(
        f"\nslow provider ({slow['latency_s']} s per mail, {slow['workers']}): {slow['emails_per_s']} emails/s "
        f"of a bound of {slow['bound_per_s']:.0f}/s = {slow['ratio']}"
    )
    print(
        f"\ndelivery to smtp-sink ({d['workers']}): {d['emails_per_s']} emails/s; {d['delivered']} of "
        f"{d['backlog']} delivered, {d['failed']} failed, drained in {d['drain_s_incl_boot']} s incl. worker boot"
    )


if __name__ == "__main__":
    main()
