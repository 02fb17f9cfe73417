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
