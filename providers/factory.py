"""Picks the real provider when its service is configured, the outbox otherwise (``make run``).

Callers (the actors) depend on the two protocols below, not on a class, so tests and the embedded
mode swap providers without touching actor code.
"""

from __future__ import annotations

from typing import Protocol

from providers.email import SmtpEmailProvider
from providers.outbox import OutboxEmailProvider, OutboxPushProvider
from providers.push import FcmPushProvider


class EmailProvider(Protocol):
    def send(
        self,
        *,
        to: str,
        subject: str,
        html: str,
        text: str,
        notification_id: str,
        headers: dict[str, str] | None = None,
    ) -> None: ...

    def close(self) -> None: ...


class PushProvider(Protocol):
    def send(self, *, token: str, title: str, body: str, image: str | None, data: dict[str, str]) -> str: ...

    def close(self) -> None: ...


def email_provider(settings) -> EmailProvider:
    """SMTP when ``SMTP_HOST`` is set, else the outbox folder."""
    if settings.smtp_host:
        return SmtpEmailProvider(settings=settings)
    return OutboxEmailProvider(settings=settings)


def push_provider(settings) -> PushProvider:
    """FCM when ``FCM_PROJECT_ID`` is set, else the outbox folder."""
    if settings.fcm_project_id:
        return FcmPushProvider(settings=settings)
    return OutboxPushProvider(settings=settings)
