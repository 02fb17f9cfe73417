"""`make run` on a machine with nothing but Python: embedded stores, a send answered end to end, its
data kept inside the checkout it runs from, and a printed admin login that always works."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import psycopg2
import pytest

from models.passwords import verify_password
from tests.conftest import JWT_SECRET
from tests.support.ports import free_port
from tests.support.processes import BIN, ROOT, herald_process, process_env, stop, wait_for

MAKE = shutil.which("make") or "make"
LOGIN_LINE = re.compile(r"admin login: (\S+) / (\S+)")


def call(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.timeout(300)
def test_make_run_answers_a_send_end_to_end(tmp_path):
    ports = {"GATEWAY_PORT": free_port(), "USERS_PORT": free_port(), "TEMPLATES_PORT": free_port()}
    outbox = tmp_path / "outbox"
    env = {
        **{k: str(v) for k, v in ports.items()},
        "USER_SERVICE_URL": f"http://127.0.0.1:{ports['USERS_PORT']}",
        "TEMPLATE_SERVICE_URL": f"http://127.0.0.1:{ports['TEMPLATES_PORT']}",
        "DATABASE_URL": f"sqlite:///{tmp_path}/herald.sqlite3",
        "OUTBOX_DIR": str(outbox),
        "BOOTSTRAP_ADMIN_EMAIL": "root@example.com",
        "BOOTSTRAP_ADMIN_PASSWORD": "a-long-admin-password",
        "MAIL_FROM": "Herald <no-reply@notify.example.com>",
        "HOST": "127.0.0.1",
    }
    link = "https://app.example.com/verify?token=7f3a&u=42"
    log = tmp_path / "make-run.log"
    with herald_process([shutil.which("make") or "make", "run"], env, log):
        base = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
        wait_for(lambda: _up(base), timeout=120, interval=0.5, what="make run's gateway")
        status, body = call(
            base + "/api/v1/auth/login", {"email": "root@example.com", "password": "a-long-admin-password"}
        )
        assert status == 200, body
        token = body["data"]["access_token"]
        status, body = call(
            base + "/api/v1/templates/",
            {
                "code": "welcome",
                "name": "Welcome",
                "subject": "Hi {{ name }}",
                "content": '<p>Hello <b>{{ name }}</b></p><p>Please <a href="{{ link }}">verify your address</a>.</p>',
            },
            token,
        )
        assert status == 201, body
        status, body = call(
            base + "/api/v1/users/",
            {
                "name": "Ada",
                "email": "ada@example.com",
                "password": "correct-horse-1",
                "preferences": {"email": True, "push": True},
            },
        )
        assert status == 201, body
        user_id = body["data"]["id"]
        status, body = call(
            base + "/api/v1/notifications/",
            {
                "notification_type": "email",
                "user_id": user_id,
                "template_code": "welcome",
                "variables": {"name": "Ada", "link": link},
                "request_id": "make-run-1",
            },
            token,
        )
        assert status == 202, body
        nid = body["data"]["notification_id"]
        mail = wait_for(lambda: list(outbox.glob("[!.]*.eml")), timeout=30, what="the e-mail in the outbox")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = call(f"{base}/api/v1/notifications/{nid}", token=token)
            if body["data"]["status"] == "delivered":
                break
            time.sleep(0.2)
        assert body["data"]["status"] == "delivered", body
    msg = message_from_bytes(Path(mail[0]).read_bytes(), policy=policy.default)
    assert msg["Subject"] == "Hi Ada" and "Hello <b>Ada</b>" in msg.get_body(("html",)).get_content()
    assert msg["Message-ID"] == f"<{nid}@notify.example.com>"  # a domain, MAIL_FROM's, on the right
    assert msg["X-Herald-Notification-ID"] == nid and msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()
    assert f"Please verify your address ({link})." in text, text
    banner = log.read_text()
    assert "root@example.com" in banner and "curl" in banner and f":{ports['GATEWAY_PORT']}" in banner


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=2) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Running:
    base: str
    email: str
    password: str


def checkout(dest: Path) -> Path:
    """Another checkout of this working tree: its tracked and new files, without ``var/``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    provide_venv(dest)
    return dest


def provide_venv(directory: Path) -> None:
    """The checkout's own ``.venv``, seeing the packages this test runs with and stamped as ``make
    install`` stamps it, so ``make run`` starts without reinstalling (no network, seconds, and never
    through another checkout's virtualenv)."""
    venv = directory / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site_packages = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    shared = sysconfig.get_paths()["purelib"]
    (site_packages / "herald-shared.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    stamp = hashlib.sha1((directory / "pyproject.toml").read_bytes()).hexdigest()[:12]  # as the Makefile's
    (venv / f".installed-{stamp}").touch()


@contextmanager
def make_run(directory: Path, log: Path, **env: str) -> Iterator[Running]:
    """``make run`` started in ``directory`` with nothing set but its ports (so several can run at
    once) and ``env``; yields the gateway and the login it printed once it answers."""
    ports = {"GATEWAY_PORT": free_port(), "USERS_PORT": free_port(), "TEMPLATES_PORT": free_port()}
    full = {
        **{k: str(v) for k, v in ports.items()},
        "USER_SERVICE_URL": f"http://127.0.0.1:{ports['USERS_PORT']}",
        "TEMPLATE_SERVICE_URL": f"http://127.0.0.1:{ports['TEMPLATES_PORT']}",
        "HOST": "127.0.0.1",
        **env,
    }
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [MAKE, "run"],
            cwd=directory,
            env={**process_env(full), "PYTHONPATH": str(directory)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def printed_login() -> re.Match | None:
            assert proc.poll() is None, f"make run exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            return LOGIN_LINE.search(log.read_text())

        login = wait_for(printed_login, timeout=120, interval=0.2, what="make run's admin login")
        base = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
        wait_for(lambda: _up(base), timeout=60, interval=0.2, what="make run's gateway")
        yield Running(base, login.group(1), login.group(2))
    finally:
        stop(proc)


def log_in(running: Running, password: str | None = None) -> int:
    body = {"email": running.email, "password": running.password if password is None else password}
    return call(running.base + "/api/v1/auth/login", body)[0]


def register(running: Running, email: str) -> int:
    body = {"name": "Ada", "email": email, "password": "correct-horse-1", "preferences": {"email": True}}
    return call(running.base + "/api/v1/users/", body)[0]


@pytest.mark.timeout(300)
def test_two_checkouts_on_one_machine_share_no_data(tmp_path):
    first, second = checkout(tmp_path / "first"), checkout(tmp_path / "second")
    with make_run(first, tmp_path / "first.log") as one, make_run(second, tmp_path / "second.log") as two:
        assert log_in(one) == 200, (tmp_path / "first.log").read_text()[-3000:]
        assert log_in(two) == 200, (tmp_path / "second.log").read_text()[-3000:]
        assert register(one, "ada@example.com") == 201
        assert register(two, "ada@example.com") == 201  # not 409: the first checkout's user is not here
    assert (first / "var" / "herald.sqlite3").is_file()
    assert (second / "var" / "herald.sqlite3").is_file()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("store", ["embedded", "postgresql"])
def test_after_make_clean_the_printed_login_works(tmp_path, database_url, store):
    """``make clean`` removes ``var/`` (the kept password) but a PostgreSQL database outlives it, with
    the admin and the password of the run before: the next run must still print a login that works."""
    directory = checkout(tmp_path / "herald")
    env = {"DATABASE_URL": database_url} if store == "postgresql" else {}
    with make_run(directory, tmp_path / "run-1.log", **env) as before:
        assert log_in(before) == 200
    subprocess.run([MAKE, "clean"], cwd=directory, check=True, capture_output=True)
    assert not (directory / "var").exists()
    provide_venv(directory)  # what the next make run would reinstall
    with make_run(directory, tmp_path / "run-2.log", **env) as after:
        assert after.password != before.password
        assert log_in(after) == 200, (tmp_path / "run-2.log").read_text()[-3000:]
        assert log_in(after, before.password) == 401


@pytest.mark.timeout(300)
def test_migrate_keeps_an_admins_password_and_make_run_matches_the_one_it_prints(tmp_path, database_url):
    """A release (``scripts.migrate``) never changes an existing admin, whatever the configured password;
    ``make run`` makes the admin match the password it prints, here an explicitly configured one."""
    env = {"DATABASE_URL": database_url, "JWT_SECRET": JWT_SECRET, "BOOTSTRAP_ADMIN_EMAIL": "root@example.com"}
    for password in ("the-first-password", "a-second-password"):
        subprocess.run(
            [str(BIN / "python"), "-m", "scripts.migrate"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
            env=process_env({**env, "BOOTSTRAP_ADMIN_PASSWORD": password}),
        )
    assert admin_password_is(database_url, "root@example.com", "the-first-password")
    directory = checkout(tmp_path / "herald")
    with make_run(directory, tmp_path / "run.log", **{**env, "BOOTSTRAP_ADMIN_PASSWORD": "a-second-password"}) as run:
        assert (run.email, run.password) == ("root@example.com", "a-second-password")
        assert log_in(run) == 200
        assert log_in(run, "the-first-password") == 401


def admin_password_is(url: str, email: str, password: str) -> bool:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT role, password_hash FROM users WHERE email = %s", (email,))
        role, stored = cur.fetchone()
    conn.close()
    return role == "admin" and verify_password(password, stored)
