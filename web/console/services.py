"""The console's calls to the user and template services: their REST APIs, the same rules as every
other client (README, "Operator console"), never their tables.

Each call carries a short-lived service token the gateway signs for the signed-in admin (``role``
``service``, ``sub`` the admin's id): service rights are all the console needs, and the template
service records the admin as the author of each version it saves. The request's correlation id
goes along, so the services' log lines join the console's.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import aiohttp

from settings import Settings
from web.common.auth import issue_token

TIMEOUT = aiohttp.ClientTimeout(total=5, connect=2)
#: Lifetime of the tokens signed for the console's calls, seconds.
TOKEN_TTL_S = 300


class ServiceError(Exception):
    """A service refused the call; ``code`` and ``message`` are its envelope's."""

    def __init__(self, status: int, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data


class Unavailable(ServiceError):
    """The service could not be reached or failed (5xx)."""

    def __init__(self, what: str) -> None:
        super().__init__(503, "SERVICE_UNAVAILABLE", f"the {what} service is unavailable; try again shortly")


class Services:
    """One client for both services, shared by every console request."""

    def __init__(self, *, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self._tokens: dict[str, tuple[str, float]] = {}

    def _token(self, admin_id: str) -> str:
        token, expires = self._tokens.get(admin_id, ("", 0.0))
        if time.time() > expires - 60:
            token = issue_token(self.settings, sub=admin_id, role="service", ttl_s=TOKEN_TTL_S)
            self._tokens[admin_id] = (token, time.time() + TOKEN_TTL_S)
        return token

    async def call(
        self,
        method: str,
        url: str,
        *,
        correlation_id: str,
        admin_id: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, dict | None]:
        """(data, meta) of a successful call; :class:`ServiceError` or :class:`Unavailable` otherwise."""
        what = "user" if url.startswith(self.settings.user_service_url) else "template"
        sent = {"X-Correlation-ID": correlation_id, **(headers or {})}
        if admin_id is not None:
            sent["Authorization"] = f"Bearer {self._token(admin_id)}"
        try:
            async with self.session.request(method, url, headers=sent, timeout=TIMEOUT, **kwargs) as resp:
                if resp.status >= 500:
                    raise Unavailable(what)
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise Unavailable(what) from None
        if not isinstance(body, dict) or "success" not in body:
            raise Unavailable(what)
        if not body["success"]:
            raise ServiceError(resp.status, str(body.get("error")), str(body.get("message")), body.get("data"))
        return body.get("data"), body.get("meta")

    # --- users -------------------------------------------------------------------------------

    def _users(self, path: str = "") -> str:
        return f"{self.settings.user_service_url}/api/v1/users/{path}"

    async def login(self, email: str, password: str, *, forwarded_for: str, correlation_id: str) -> dict:
        """The API's login (its brute-force limits included) for the browser at ``forwarded_for``."""
        data, _ = await self.call(
            "POST",
            f"{self.settings.user_service_url}/api/v1/auth/login",
            json={"email": email, "password": password},
            headers={"X-Forwarded-For": forwarded_for},
            correlation_id=correlation_id,
        )
        return data

    async def users(self, admin_id: str, cid: str, *, page: int, limit: int, **filters: str) -> tuple[list, dict]:
        params = {"page": page, "limit": limit, **{k: v for k, v in filters.items() if v}}
        return await self.call("GET", self._users(), params=params, admin_id=admin_id, correlation_id=cid)

    async def user(self, admin_id: str, cid: str, user_id: str) -> dict:
        data, _ = await self.call("GET", self._users(quote(user_id, safe="")), admin_id=admin_id, correlation_id=cid)
        return data

    async def deactivate(self, admin_id: str, cid: str, user_id: str) -> dict:
        url = self._users(quote(user_id, safe=""))
        data, _ = await self.call("DELETE", url, admin_id=admin_id, correlation_id=cid)
        return data

    # --- templates ---------------------------------------------------------------------------

    def _templates(self, path: str = "") -> str:
        return f"{self.settings.template_service_url}/api/v1/templates/{path}"

    async def templates(self, admin_id: str, cid: str, *, page: int, limit: int) -> tuple[list, dict]:
        params = {"page": page, "limit": limit}
        return await self.call("GET", self._templates(), params=params, admin_id=admin_id, correlation_id=cid)

    async def template(self, admin_id: str, cid: str, code: str, language: str) -> dict:
        url = self._templates(quote(code, safe=""))
        data, _ = await self.call("GET", url, params={"language": language}, admin_id=admin_id, correlation_id=cid)
        return data

    async def versions(
        self, admin_id: str, cid: str, code: str, language: str, *, page: int, limit: int
    ) -> tuple[list, dict]:
        url = self._templates(quote(code, safe="") + "/versions")
        params = {"language": language, "page": page, "limit": limit}
        return await self.call("GET", url, params=params, admin_id=admin_id, correlation_id=cid)

    async def update_template(self, admin_id: str, cid: str, code: str, body: dict) -> dict:
        url = self._templates(quote(code, safe=""))
        data, _ = await self.call("PUT", url, json=body, admin_id=admin_id, correlation_id=cid)
        return data
