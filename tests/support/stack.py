"""The three HTTP services in the test's event loop, wired by URL as in production."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from settings import Settings
from web.common.auth import issue_token


@dataclass
class Stack:
    client: object  # aiohttp TestClient on the gateway
    settings: Settings
    env: dict[str, str]
    admin_token: str = ""
    servers: list = field(default_factory=list)

    def token(self, sub: str, role: str = "user", **kw) -> str:
        return issue_token(self.settings, sub=sub, role=role, **kw)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    async def create_user(self, **overrides) -> dict:
        body = {
            "name": "Ada",
            "email": f"ada-{uuid.uuid4().hex[:8]}@example.com",
            "password": "correct-horse-1",
            "preferences": {"email": True, "push": True},
            **overrides,
        }
        resp = await self.client.post("/api/v1/users/", json=body, headers=self.auth())
        assert resp.status == 201, await resp.text()
        return (await resp.json())["data"]

    async def create_template(self, **overrides) -> dict:
        body = {
            "code": f"welcome-{uuid.uuid4().hex[:6]}",
            "name": "Welcome",
            "subject": "Hello {{ name }}",
            "content": "<p>Hi <b>{{ name }}</b>, open {{ link }}</p>",
            "language": "en",
            **overrides,
        }
        resp = await self.client.post("/api/v1/templates/", json=body, headers=self.auth())
        assert resp.status == 201, await resp.text()
        return (await resp.json())["data"]

    async def send(self, token: str | None = None, **body):
        return await self.client.post("/api/v1/notifications/", json=body, headers=self.auth(token))


async def start_stack(aiohttp_server, aiohttp_client, env: dict[str, str]) -> Stack:
    from web.gateway.app import create_app as gateway_app
    from web.gateway.app_keys import publisher_key
    from web.templates.app import create_app as templates_app
    from web.users.app import create_app as users_app

    settings = Settings.from_env(env)
    users = await aiohttp_server(users_app(settings))
    templates = await aiohttp_server(templates_app(settings))
    env = {
        **env,
        "USER_SERVICE_URL": str(users.make_url("")).rstrip("/"),
        "TEMPLATE_SERVICE_URL": str(templates.make_url("")).rstrip("/"),
    }
    settings = Settings.from_env(env)
    app = gateway_app(settings)
    client = await aiohttp_client(app)
    for _ in range(100):
        if app[publisher_key].ready:
            break
        await asyncio.sleep(0.05)
    stack = Stack(client=client, settings=settings, env=env, servers=[users, templates])
    stack.admin_token = stack.token(str(uuid.uuid4()), "admin")
    return stack
