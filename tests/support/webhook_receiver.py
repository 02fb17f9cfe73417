"""A real HTTP receiver of webhooks for tests, checking each signature with the README's own code.

Usage (inside an async test, with pytest-aiohttp's ``aiohttp_server``)::

    receiver = await start_receiver(aiohttp_server)
    receiver.script("/flaky", "500", "sleep:2", "200")  # answers in turn; the last one repeats
    receiver.secrets["/flaky"] = secret                # then each hit's ``verified`` is checked
    url = receiver.url("/flaky")
    ...
    await receiver.wait_for(3)                         # three requests arrived
    receiver.hits                                      # path, headers, raw body, time, verified

``verify`` is taken from README.md (the block after ``<!-- webhook-verify``) and executed, so what
the README tells receivers to run is exactly what these tests run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- webhook-verify"


def readme_verify() -> Callable[..., bool]:
    """The ``verify`` function of the README's receiver snippet, executed from the README's text."""
    text = README.read_text()
    assert MARKER in text, "README.md lost its webhook verification snippet"
    block = text.split(MARKER, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md (webhook verification)", "exec"), namespace)
    return namespace["verify"]


@dataclass
class Hit:
    path: str
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    at: float
    verified: bool | None

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    base: str = ""
    hits: list[Hit] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    verify: Callable[..., bool] = field(default_factory=readme_verify)

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, *steps: str) -> None:
        """Answers for ``path`` in turn: a status (``"503"``), or ``"sleep:S"`` (answer 200 after S
        seconds); the last step repeats. Unscripted paths answer 200."""
        self.scripts[path] = list(steps)

    def on(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 30.0) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = self.on(path) if path else self.hits
            if len(hits) >= count:
                return hits
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} webhook request(s) expected on {path or 'any path'}, got {self.hits}")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.secrets.get(request.path)
        signature = request.headers.get("X-Herald-Signature", "")
        verified = self.verify(secret, body, signature) if secret is not None else None
        self.hits.append(Hit(request.path, request.headers.copy(), body, time.monotonic(), verified))
        steps = self.scripts.get(request.path) or ["200"]
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if step.startswith("sleep:"):
            await asyncio.sleep(float(step.split(":", 1)[1]))
            return web.Response(status=200)
        return web.Response(status=int(step), text=f"answer {step}")


async def start_receiver(aiohttp_server) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.base = str(server.make_url("")).rstrip("/")
    return receiver
