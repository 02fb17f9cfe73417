"""What a worker process needs to deliver: settings, databases, status writer, renderer, providers.

Built once per process by :func:`actors.setup.build` and handed to the actors and middleware that
need it, instead of module-level globals. Providers keep per-thread connections internally. A
test-mode notification gets the simulated providers (README, "Test mode"), chosen here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.base import Databases, bind_databases
from models.notification import TEST
from models.redis_client import sync_client
from models.redis_keys import RedisKeys
from models.status_writer import StatusWriter
from providers import factory
from providers.factory import EmailProvider, PushProvider
from providers.rendering import Renderer
from providers.simulated import SimulatedEmailProvider, SimulatedPushProvider
from providers.webhook import WebhookSender
from settings import Settings


@dataclass
class Runtime:
    settings: Settings
    databases: Databases
    status: StatusWriter
    email: EmailProvider
    push: PushProvider
    simulated_email: EmailProvider
    simulated_push: PushProvider
    webhooks: WebhookSender
    renderer: Renderer = field(default_factory=Renderer)

    def email_for(self, mode: str) -> EmailProvider:
        """The e-mail provider of a notification in ``mode``: simulated for ``test``."""
        return self.simulated_email if mode == TEST else self.email

    def push_for(self, mode: str) -> PushProvider:
        return self.simulated_push if mode == TEST else self.push

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        redis = sync_client(settings.redis_url)
        return cls(
            settings=settings,
            databases=bind_databases(
                notifications=settings.notifications_database_url, users=settings.users_database_url
            ),
            status=StatusWriter(redis=redis, keys=RedisKeys(settings.redis_key_prefix)),
            email=factory.email_provider(settings),
            push=factory.push_provider(settings),
            simulated_email=SimulatedEmailProvider(settings=settings),
            simulated_push=SimulatedPushProvider(),
            webhooks=WebhookSender(allow_private=settings.webhook_allow_private, timeout_s=settings.webhook_timeout_s),
        )
