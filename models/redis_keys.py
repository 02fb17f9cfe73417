"""Redis key names, in one place, behind an optional prefix (README, "What a send does").

The prefix (``REDIS_KEY_PREFIX``, empty by default) lets test runs and several installs share one
Redis without colliding.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Lifetimes, seconds.
USER_TTL_S = 3600
TEMPLATE_TTL_S = 3600
IDEMPOTENCY_TTL_S = 24 * 3600
STATUS_TTL_S = 7 * 24 * 3600
RATE_WINDOW_S = 3600
#: An operator console session ends this long after sign-in, or after this long unused.
CONSOLE_SESSION_TTL_S = 8 * 3600
CONSOLE_IDLE_TTL_S = 3600
#: Failed logins are counted per account and per client address over windows of this length.
LOGIN_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class RedisKeys:
    """Every key Herald writes, behind ``REDIS_KEY_PREFIX``."""

    prefix: str = ""

    def user(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    def template(self, code: str, language: str) -> str:
        return f"{self.prefix}template:{code}:{language}"

    def notification(self, notification_id: str) -> str:
        return f"{self.prefix}notification:{notification_id}"

    def request(self, caller: str, request_id: str) -> str:
        return f"{self.prefix}request_id:{caller}:{request_id}"

    def rate_limit(self, user_id: str, channel: str) -> str:
        return f"{self.prefix}rate_limit:{user_id}:{channel}"

    def sending(self, notification_id: str) -> str:
        return f"{self.prefix}sending:{notification_id}"

    def circuit(self, name: str) -> str:
        return f"{self.prefix}circuit:{name}"

    def circuit_probe(self, name: str) -> str:
        return f"{self.prefix}circuit:{name}:probe"

    def maintenance_tick(self, job: str, tick: str) -> str:
        return f"{self.prefix}maintenance:{job}:{tick}"

    def maintenance_alert(self, name: str) -> str:
        return f"{self.prefix}maintenance:alert:{name}"

    def console_session(self, digest: str) -> str:
        """An operator console session, under a digest of its cookie (the cookie itself is never stored)."""
        return f"{self.prefix}console_session:{digest}"

    def login_failures(self, scope: str, subject: str) -> str:
        """Failed logins in the current window: ``scope`` is ``account`` (``subject`` a digest of
        the e-mail) or ``address`` (the client's address)."""
        return f"{self.prefix}login_failures:{scope}:{subject}"
