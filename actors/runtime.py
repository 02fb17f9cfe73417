"""What a worker process needs to deliver: settings, databases, status writer, renderer, providers.

Built once per process by :func:`actors.setup.build` and handed to the actors and middleware that
need it, instead of module-level globals. Providers keep per-thread connections internally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.base import Databases, bind_databases
from models.redis_client import sync_client
from models.redis_keys import RedisKeys
from models.status_writer import StatusWriter
from providers import factory
from providers.factory import EmailProvider, PushProvider
from providers.rendering import Renderer
from settings import Settings


@dataclass
class Runtime:
    settings: Settings
    databases: Databases
    status: StatusWriter
    email: EmailProvider
    push: PushProvider
    renderer: Renderer = field(default_factory=Renderer)

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
        )
