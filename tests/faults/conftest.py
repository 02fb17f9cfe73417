"""The fault-injection suite's system under test: real processes, as an operator runs them.

The gateway, user and template services (``python -m web.<role>``) and two ``dramatiq actors``
worker processes on ``email.queue``, a real SMTP server, and a private database, Redis prefix and
RabbitMQ vhost. Every process reaches PostgreSQL, Redis and RabbitMQ through a :class:`TcpProxy`
of its own kind, so a test can "stop" a dependency (``herald.proxies["redis"].cut()``) without
touching the machine's services. The test itself reads the truth (statuses, queue depths) directly.
Time is scaled down through the settings.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from settings import Settings
from tests.conftest import make_env
from tests.support import resources
from tests.support.ledger import Ledger, statuses_from_database
from tests.support.ports import free_port
from tests.support.processes import BIN, herald_process, wait_for, worker
from tests.support.smtp_server import SmtpServer, smtp_server
from tests.support.tcp_proxy import TcpProxy
from web.common.auth import issue_token

WORKER_THREADS = 4
WORKER_PREFETCH_MARGIN = 2
#: The settings that scale time down (the retry and breaker timings at a tenth of a second per unit).
FAST = {
    "RETRY_BACKOFF_UNIT_MS": "100",
    "RETRY_MAX": "5",
    "CIRCUIT_RECOVERY_TIMEOUT_S": "2",
    "CIRCUIT_FAILURE_THRESHOLD": "3",
    "dramatiq_worker_timeout": "100",
}
#: Client-side limit on one send: the 503 comes within 5 s.
SEND_TIMEOUT_S = 15


@dataclass
class Herald:
    gateway: str
    env: dict[str, str]
    database_url: str  # direct, for the test's own reads
    vhost: str
    proxies: dict[str, TcpProxy]
    smtp: SmtpServer
    workers: list = field(default_factory=list)  # Popen of each worker process (group leader)
    admin_token: str = ""
    user_id: str = ""
    template_code: str = ""
    tmp_path: Path | None = None

    # -- sending --

    async def send(self, session: aiohttp.ClientSession, ledger: Ledger) -> int | None:
        """One send, recorded in the ledger; its request id travels in the subject."""
        rid = ledger.next_request_id()
        body = {
            "notification_type": "email",
            "user_id": self.user_id,
            "template_code": self.template_code,
            "variables": {"rid": rid},
            "request_id": rid,
        }
        started = time.monotonic()
        try:
            async with session.post(
                f"{self.gateway}/api/v1/notifications/",
                json=body,
                headers={"Authorization": f"Bearer {self.admin_token}"},
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
            ) as resp:
                text = await resp.text()
                nid = None
                if resp.status == 202:
                    nid = json.loads(text)["data"]["notification_id"]
                elif resp.status == 503:
                    assert json.loads(text)["error"] == "SERVICE_UNAVAILABLE", text
                attempt = ledger.record(rid, resp.status, nid, None if resp.status in (202, 503) else text[:200])
        except (TimeoutError, aiohttp.ClientError) as exc:
            attempt = ledger.record(rid, None, error=type(exc).__name__)
        attempt.started, attempt.finished = started, time.monotonic()
        return attempt.status

    async def stream(
        self,
        session: aiohttp.ClientSession,
        ledger: Ledger,
        stop: asyncio.Event,
        *,
        concurrency: int = 4,
        pause: float = 0.02,
    ) -> None:
        """Send continuously from ``concurrency`` clients until ``stop`` is set."""

        async def client() -> None:
            while not stop.is_set():
                status = await self.send(session, ledger)
                # a refused send is retried by a client after a while, not in a hot loop
                await asyncio.sleep(pause if status == 202 else 0.2)

        await asyncio.gather(*(client() for _ in range(concurrency)))

    async def send_many(
        self, session: aiohttp.ClientSession, ledger: Ledger, count: int, *, concurrency: int = 8
    ) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)

        async def client() -> None:
            while not queue.empty():
                queue.get_nowait()
                await self.send(session, ledger)

        await asyncio.gather(*(client() for _ in range(concurrency)))

    # -- reading the truth --

    def statuses(self, nids) -> dict[str, str]:
        return statuses_from_database(self.database_url, nids)

    async def settle(self, ledger: Ledger, *, timeout: float) -> None:
        """Wait until every accepted notification is received and recorded ``delivered`` (or the
        timeout passes: the ledger then shows what is missing), then a moment for stray copies."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        accepted = ledger.accepted()
        while time.monotonic() < deadline:
            received = {(m.message.get("X-Herald-Notification-ID") or "").strip() for m in list(self.smtp.messages)}
            if set(accepted) <= received:
                statuses = await loop.run_in_executor(None, self.statuses, list(accepted))
                if all(statuses.get(nid) == "delivered" for nid in accepted):
                    break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.5)

    def reconcile(self, ledger: Ledger):
        result = ledger.reconcile(list(self.smtp.messages), self.statuses(list(ledger.accepted())))
        ledger.report(result, self.tmp_path / "ledger.txt" if self.tmp_path else None)
        return result

    def queue_totals(self) -> dict[str, int]:
        """Messages (ready + unacked) per queue of the vhost, read with rabbitmqctl (no proxy)."""
        out = resources.rabbitmqctl("list_queues", "-p", self.vhost, "name", "messages")
        totals = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                totals[parts[0]] = int(parts[1])
        return totals


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _consumers(vhost: str) -> int:
    out = resources.rabbitmqctl("list_consumers", "-p", vhost, "queue_name")
    return sum(1 for line in out.splitlines() if line.strip() == "email.queue")


def _api(url: str, body: dict, token: str) -> dict:
    import urllib.request

    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def start_worker(stack: ExitStack, herald: Herald, index: int, env: dict[str, str]):
    prom = herald.tmp_path / f"prom-{index}"
    metrics = {
        "dramatiq_prom_port": str(free_port()),
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_db": str(prom),
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
    }
    proc = stack.enter_context(
        worker(
            {**env, **metrics}, herald.tmp_path / f"worker-{index}.log", queues=("email.queue",), threads=WORKER_THREADS
        )
    )
    herald.workers.append(proc)
    return proc


@pytest.fixture
def herald(database_url, redis_prefix, rabbit_vhost, tmp_path):
    """The whole system on real processes, every dependency behind a proxy; yields a :class:`Herald`."""
    _, vhost = rabbit_vhost
    db_name = database_url.rsplit("/", 1)[1]
    with ExitStack() as stack:
        proxies = {
            "postgres": stack.enter_context(TcpProxy("127.0.0.1", 5432)),
            "redis": stack.enter_context(TcpProxy("127.0.0.1", 6379)),
            "rabbitmq": stack.enter_context(TcpProxy("127.0.0.1", 5672)),
        }
        smtp = stack.enter_context(smtp_server())
        ports = {name: free_port() for name in ("gateway", "users", "templates")}
        env = make_env(
            database_url=f"postgresql://root@127.0.0.1:{proxies['postgres'].port}/{db_name}",
            redis_prefix=redis_prefix,
            rabbitmq_url=f"amqp://guest:guest@127.0.0.1:{proxies['rabbitmq'].port}/{vhost}",
            REDIS_URL=f"redis://127.0.0.1:{proxies['redis'].port}/0",
            RATE_LIMIT_PER_HOUR=str(10**9),
            GATEWAY_PORT=str(ports["gateway"]),
            USERS_PORT=str(ports["users"]),
            TEMPLATES_PORT=str(ports["templates"]),
            USER_SERVICE_URL=f"http://127.0.0.1:{ports['users']}",
            TEMPLATE_SERVICE_URL=f"http://127.0.0.1:{ports['templates']}",
            HOST="127.0.0.1",
            WORKER_PREFETCH_MARGIN=str(WORKER_PREFETCH_MARGIN),
            **smtp.env,
            **FAST,
        )
        herald = Herald(
            gateway=f"http://127.0.0.1:{ports['gateway']}",
            env=env,
            database_url=database_url,
            vhost=vhost,
            proxies=proxies,
            smtp=smtp,
            tmp_path=tmp_path,
        )
        for role in ("users", "templates", "gateway"):
            stack.enter_context(
                herald_process([str(BIN / "python"), "-m", f"web.{role}"], env, tmp_path / f"{role}.log")
            )
        for index in (1, 2):
            start_worker(stack, herald, index, env)
        wait_for(lambda: _healthy(herald.gateway), timeout=40, interval=0.2, what="the gateway's /health")
        settings = Settings.from_env(env)
        herald.admin_token = issue_token(settings, sub=str(uuid.uuid4()), role="admin")
        code = "fault-" + uuid.uuid4().hex[:6]
        _api(
            herald.gateway + "/api/v1/templates/",
            {"code": code, "name": "Fault", "subject": "{{ rid }}", "content": "<p>request {{ rid }}</p>"},
            herald.admin_token,
        )
        user = _api(
            herald.gateway + "/api/v1/users/",
            {
                "name": "Fay",
                "email": "fay@example.com",
                "password": "fault-password-1",
                "preferences": {"email": True, "push": False},
            },
            herald.admin_token,
        )
        herald.user_id, herald.template_code = user["data"]["id"], code
        wait_for(lambda: _consumers(vhost) >= 2, timeout=40, interval=0.5, what="both workers consuming")
        yield herald
        for proc in herald.workers:  # report a worker that died on its own (not one a test killed)
            if proc.poll() not in (None, -9) and proc.returncode != 0:
                print(f"worker {proc.pid} exited with {proc.returncode}")


@dataclass
class Outage:
    dependency: str
    cut_at: float
    restored_at: float
    recovered_at: float  # the first 202 after the restore was answered

    def during(self, ledger: Ledger, *, grace: float = 0.5) -> list:
        """Attempts sent after the cut (plus ``grace`` for requests already past the dependency) and
        answered before the restore: the gateway must refuse every one with 503."""
        return [a for a in ledger.attempts if a.started >= self.cut_at + grace and a.finished <= self.restored_at]


async def outage(
    herald: Herald,
    dependency: str,
    ledger: Ledger,
    *,
    before: float = 2.0,
    down: float = 5.0,
    recover_timeout: float = 40.0,
    after: float = 2.0,
) -> Outage:
    """Stream sends; cut ``dependency`` after ``before`` s, restore it ``down`` s later, keep sending
    until the gateway accepts again and ``after`` s more. (The sleeps shape the fault's timing only;
    every correctness check polls with a deadline.)"""
    proxy = herald.proxies[dependency]
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        sending = asyncio.create_task(herald.stream(session, ledger, stop))
        try:
            await asyncio.sleep(before)
            assert ledger.count("accepted") > 0, "nothing accepted before the fault"
            proxy.cut()
            cut_at = time.monotonic()
            await asyncio.sleep(down)
            proxy.restore()
            restored_at = time.monotonic()
            deadline = restored_at + recover_timeout
            while not [a for a in ledger.attempts if a.started >= restored_at and a.status == 202]:
                assert time.monotonic() < deadline, (
                    f"the gateway accepted nothing within {recover_timeout}s of {dependency} coming back"
                )
                await asyncio.sleep(0.1)
            recovered_at = time.monotonic()
            await asyncio.sleep(after)
        finally:
            stop.set()
            await sending
    return Outage(dependency, cut_at, restored_at, recovered_at)
