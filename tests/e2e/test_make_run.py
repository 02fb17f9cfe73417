"""`make run` on a machine with nothing but Python: embedded stores, and a send answered end to end."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.processes import herald_process, wait_for


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
        "HOST": "127.0.0.1",
    }
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
                "content": "<p>Hello <b>{{ name }}</b></p>",
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
                "variables": {"name": "Ada"},
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
    text = Path(mail[0]).read_text()
    assert "Subject: Hi Ada" in text and "Hello <b>Ada</b>" in text
    banner = log.read_text()
    assert "root@example.com" in banner and "curl" in banner and f":{ports['GATEWAY_PORT']}" in banner


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=2) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False
