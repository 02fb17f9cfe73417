"""The gateway checked against its own document by schemathesis, on the real services.

The three services run in this test's event loop on real ports (``start_stack``), on a database,
Redis prefix and RabbitMQ vhost of the test's own; ``schemathesis run`` (the CLI, in a subprocess,
so the loop keeps serving) takes the document the gateway serves at ``/openapi.json`` and runs
every phase (examples, coverage, fuzzing, stateful along the document's links) with every check, a
fixed seed and ``SCHEMATHESIS_MAX_EXAMPLES`` examples per operation (``make contract`` raises it).
The users, templates and notifications created here are offered to it as dictionaries, so some of
its sends reach a real user with a real template and are accepted, and a replay finds a dead letter.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path
from xml.etree import ElementTree

import pika
import pytest

from tests.conftest import make_env
from tests.support.stack import start_stack
from web.gateway.reference import document

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
#: Examples per operation: a modest number by default (make test), more with ``make contract``.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"))
#: Which generated values may be taken from the dictionaries, and how often.
BINDINGS = {
    "body.user_id": ("users", 0.5),
    "path.user_id": ("users", 0.3),
    "body.template_code": ("templates", 0.5),
    "path.code": ("templates", 0.3),
    "body.notification_id": ("notifications", 0.3),
    "path.notification_id": ("notifications", 0.3),
    "body.email": ("emails", 0.5),
    "body.password": ("passwords", 0.5),
}


@pytest.fixture
async def contract_stack(aiohttp_server, aiohttp_client, database_url, redis_prefix, rabbit_vhost):
    """The stack on a vhost of its own (the dead-letter operations read failed.queue), with a rate
    limit no run reaches."""
    url, _ = rabbit_vhost
    env = make_env(
        database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url, RATE_LIMIT_PER_HOUR="1000000"
    )
    return await start_stack(aiohttp_server, aiohttp_client, env)


async def _dictionaries(stack) -> dict[str, list[str]]:
    """Two users, two templates, and two notifications dead-lettered by RabbitMQ itself (rejected
    from email.queue without requeue) and one left pending."""
    users = [await stack.create_user(), await stack.create_user(push_token="tok_" + uuid.uuid4().hex * 2)]
    templates = [await stack.create_template(content="<p>Hello</p>", subject="Hi"), await stack.create_template()]
    notifications = []
    for n in range(3):
        if n == 2:
            _dead_letter_everything(stack.settings.rabbitmq_url)
        resp = await stack.send(
            notification_type="email",
            user_id=users[0]["id"],
            template_code=templates[0]["code"],
            request_id=f"seed-{n}",
        )
        assert resp.status == 202, await resp.text()
        notifications.append((await resp.json())["data"]["notification_id"])
    return {
        "users": [u["id"] for u in users],
        "templates": [t["code"] for t in templates],
        "notifications": notifications,
        "emails": [u["email"] for u in users],
        "passwords": ["correct-horse-1"],
    }


def _dead_letter_everything(amqp_url: str, queue: str = "email.queue") -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        while (method := channel.basic_get(queue, auto_ack=False)[0]) is not None:
            channel.basic_reject(method.delivery_tag, requeue=False)
    finally:
        connection.close()


def _config(values: dict[str, list[str]]) -> str:
    """The checked-in configuration plus this run's dictionaries and where they may be used."""
    lines = [(HERE / "schemathesis.toml").read_text(), "", "[parameters]"]
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = {p} }}' for key, (name, p) in BINDINGS.items()]
    for name, items in values.items():
        quoted = ", ".join(f'"{item}"' for item in items)
        lines += ["", f"[dictionaries.{name}]", f"values = [{quoted}]"]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(max(900, EXAMPLES * 10))
async def test_schemathesis_finds_no_failure(contract_stack, tmp_path):
    stack = contract_stack
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(await _dictionaries(stack)))
    base = str(stack.client.make_url("")).rstrip("/")
    # The document as served, from a file: read from its URL, schemathesis would leave out the
    # operation serving it.
    served = await stack.client.get("/openapi.json")
    (tmp_path / "openapi.json").write_bytes(await served.read())
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        "openapi.json",
        "--url",
        base,
        "--max-examples",
        str(EXAMPLES),
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HERALD_CONTRACT_TOKEN": stack.admin_token,
        "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
    }
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = (await proc.communicate())[0].decode(errors="replace")
    print(output)
    assert proc.returncode == 0, output[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts and counts[1] == counts[2], output[-2000:]
    documented = {f"{method.upper()} {path}" for path, item in document()["paths"].items() for method in item}
    (report,) = (tmp_path / "report").glob("junit-*.xml")
    tested = {case.get("name") for case in ElementTree.parse(report).iter("testcase")}
    assert documented <= tested, sorted(documented - tested)
    assert "Stateful tests" in tested
    resp = await stack.client.get("/health")
    assert resp.status == 200, await resp.text()
