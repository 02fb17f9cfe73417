"""A restart of every Herald process before the due time loses nothing. The schedule lives in
PostgreSQL, not in any process (README, "Scheduling, expiry, cancelling"), so the gateway, the
user and template services, the e-mail worker and the maintenance worker (whose due-time loop
publishes scheduled sends) may all stop before a send's time and start again, fresh, on the same
database, Redis prefix and vhost: each scheduled send still arrives once, on time.

Each process runs with its role's command (README, "Deploying": ``python -m web.<role>``,
``dramatiq actors --queues ...``), is ready when its ``/health`` answers 200 or its queue has a
consumer, and is stopped as a container runtime stops it: SIGTERM to its main process only (a
dramatiq worker process signalled by its process group as well as by its parent would take the
second SIGTERM as a kill, not a clean stop). The webhook and push workers and the periodic-job
scheduler are not started: no scheduled e-mail goes through them.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from settings import Settings
from tests.e2e.test_delivery import queue_depth
from tests.support.ledger import statuses_from_database
from tests.support.ports import free_port
from tests.support.processes import BIN, herald_process, wait_for, worker
from tests.support.resources import rabbitmqctl
from tests.support.smtp_server import smtp_server
from web.common.auth import issue_token

ROLES = ("users", "templates", "gateway")
#: The worker processes, by name: the e-mail deliveries, and the maintenance worker that runs the
#: due-time loop (README, "Scheduling, expiry, cancelling").
WORKERS = {"email": "email.queue", "maintenance": "maintenance.queue"}
#: Seconds ahead of the sends that each is scheduled.
AHEAD_S = (8, 9, 10)
#: How late a send may arrive after its time (or after the restarted processes are ready, if they
#: came up after it): a due-time pass a second, a publish and a delivery, on a busy two-core machine.
LATE_S = 5


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture
def herald_env(env, smtp) -> dict[str, str]:
    """The test's database, Redis prefix and vhost, and a port of its own for each web service."""
    ports = {role: free_port() for role in ROLES}
    return {
        **env,
        **smtp.env,
        "HOST": "127.0.0.1",
        "GATEWAY_PORT": str(ports["gateway"]),
        "USERS_PORT": str(ports["users"]),
        "TEMPLATES_PORT": str(ports["templates"]),
        "USER_SERVICE_URL": f"http://127.0.0.1:{ports['users']}",
        "TEMPLATE_SERVICE_URL": f"http://127.0.0.1:{ports['templates']}",
    }


def start_herald(stack: ExitStack, env: dict[str, str], logs: Path, run: int) -> list[subprocess.Popen]:
    """Every Herald process the scheduled e-mails go through, each with its own log per run."""
    procs = [
        stack.enter_context(herald_process([str(BIN / "python"), "-m", f"web.{role}"], env, logs / f"{role}-{run}.log"))
        for role in ROLES
    ]
    for name, queue in WORKERS.items():
        prom = logs / f"prom-{name}-{run}"  # each worker's metrics on a port and directory of its own
        metrics = {
            "dramatiq_prom_port": str(free_port()),
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_db": str(prom),
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
        }
        log = logs / f"{name}-worker-{run}.log"
        procs.append(stack.enter_context(worker({**env, **metrics}, log, queues=(queue,))))
    return procs


def wait_ready(env: dict[str, str], vhost: str) -> None:
    for port in (env["USERS_PORT"], env["TEMPLATES_PORT"], env["GATEWAY_PORT"]):
        wait_for(lambda port=port: healthy(port), timeout=40, interval=0.2, what=f"/health on {port}")
    wait_for(lambda: set(WORKERS.values()) <= consumed(vhost), timeout=40, interval=0.5, what="both workers")


def stop_all(procs: list[subprocess.Popen]) -> list[int]:
    """SIGTERM to each main process at once (dramatiq passes it on to its worker processes), then
    wait for every one to exit; their exit codes."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    return [proc.wait(timeout=20) for proc in procs]


def healthy(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def consumed(vhost: str) -> set[str]:
    return set(rabbitmqctl("list_consumers", "-p", vhost, "queue_name").split())


def api(env: dict[str, str], token: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{env['GATEWAY_PORT']}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def all_delivered(env: dict[str, str], token: str, nids) -> dict[str, dict] | None:
    """Each notification as GET /api/v1/notifications/{id} shows it, once every one is delivered."""
    notes = {nid: api(env, token, f"/api/v1/notifications/{nid}")[1]["data"] for nid in nids}
    return notes if all(note["status"] == "delivered" for note in notes.values()) else None


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def mailed(smtp) -> Counter:
    return Counter((m.message.get("X-Herald-Notification-ID") or "").strip() for m in list(smtp.messages))


@pytest.mark.timeout(150)
def test_every_process_restarted_before_the_due_time_loses_no_scheduled_send(
    herald_env, smtp, rabbit_vhost, database_url, tmp_path
):
    env, (_, vhost) = herald_env, rabbit_vhost
    token = issue_token(Settings.from_env(env), sub=str(uuid.uuid4()), role="admin")
    with ExitStack() as first:
        procs = start_herald(first, env, tmp_path, 1)
        wait_ready(env, vhost)
        template = {"code": "restart", "name": "Restart", "subject": "Send {{ n }}", "content": "<p>{{ n }}</p>"}
        status, answer = api(env, token, "/api/v1/templates/", template)
        assert status == 201, answer
        user = {"name": "Ada", "email": "ada@example.com", "password": "correct-horse-1"}
        status, answer = api(env, token, "/api/v1/users/", user)
        assert status == 201, answer
        user_id = answer["data"]["id"]
        due: dict[str, dt.datetime] = {}
        for n, ahead in enumerate(AHEAD_S):
            send_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ahead)
            body = {
                "notification_type": "email",
                "user_id": user_id,
                "template_code": "restart",
                "variables": {"n": str(n)},
                "request_id": f"restart-{n}",
                "send_at": send_at.isoformat(),
            }
            status, answer = api(env, token, "/api/v1/notifications/", body)
            assert status == 202 and answer["data"]["status"] == "scheduled", answer
            due[answer["data"]["notification_id"]] = send_at
        codes = stop_all(procs)
    stopped = dt.datetime.now(dt.UTC)
    assert stopped < min(due.values()), "every process was down before the first send's time"
    assert codes == [0] * len(procs), f"a clean stop of every process: {codes}"
    # nothing was published yet: the schedule is only in PostgreSQL while nothing runs
    assert statuses_from_database(database_url, due) == dict.fromkeys(due, "scheduled")
    assert smtp.messages == []

    with ExitStack() as second:
        procs = start_herald(second, env, tmp_path, 2)
        wait_ready(env, vhost)
        ready = dt.datetime.now(dt.UTC)
        last = max(max(due.values()), ready) + dt.timedelta(seconds=LATE_S)
        wait = (last - dt.datetime.now(dt.UTC)).total_seconds() + 10  # a miss shows its lateness below
        wait_for(lambda: set(mailed(smtp)) >= set(due), timeout=wait, interval=0.2, what="every scheduled mail")
        notes = wait_for(lambda: all_delivered(env, token, due), timeout=10, what="every send recorded delivered")
        assert stop_all(procs) == [0] * len(procs), "a clean stop: unacked and delayed messages go back to their queues"
    # every process stopped: what reached the SMTP server is final, and no copy is left to send later
    copies = mailed(smtp)
    left = [queue_depth(env["RABBITMQ_URL"], q) for q in ("email.queue", "email.queue.DQ", "failed.queue")]
    first_due = min(due.values())
    print(
        f"stopped {(first_due - stopped).total_seconds():.1f} s before the first due time, "
        f"ready again {(ready - first_due).total_seconds():+.1f} s from it"
    )
    assert copies == dict.fromkeys(due, 1), "each scheduled send arrived exactly once"
    # clean stops leave no crash window: each was published once and consumed, none dead-lettered
    assert left == [0, 0, 0], "no copy of a send is left in a queue to be sent later"
    for nid, send_at in due.items():
        note = notes[nid]
        assert [a["outcome"] for a in note["attempts"]] == ["published", "delivered"], note["attempts"]
        arrived = instant(note["delivered_at"])
        assert send_at <= arrived <= max(send_at, ready) + dt.timedelta(seconds=LATE_S), (nid, send_at, ready, arrived)
