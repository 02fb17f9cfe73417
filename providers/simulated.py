"""The providers of test mode: everything a real send checks, nothing sent (README, "Test mode").

A notification sent with an ``hk_test_`` key is delivered by these instead of SMTP or FCM. The
message or payload is built by the real builders, so a header the real send would refuse fails
here too. Then it is dropped. A simulated send ends ``delivered``, unless the recipient is one of
the magic addresses below: those fail with a permanent error, as a bounce or an unregistered
token would. An application can test both outcomes, and its webhooks, without any real traffic.
"""

from __future__ import annotations

import uuid

from providers.errors import PermanentProviderError
from providers.mail_message import message_bytes, parse_address, parse_mail_from
from providers.push import notify_kwargs, request_body

#: The e-mail address and push token whose test-mode sends fail permanently.
PERMANENT_FAILURE_EMAIL = "simulate-permanent-failure@herald.test"
PERMANENT_FAILURE_TOKEN = "simulate-permanent-failure-token"
#: The ``reason`` of a simulated failure, in the notification's ``error``.
SIMULATED_FAILURE = "simulated_permanent_failure"


class SimulatedEmailProvider:
    """Same contract and errors as :class:`providers.email.SmtpEmailProvider`; sends nothing."""

    def __init__(self, *, settings) -> None:
        self._from = parse_mail_from(settings.mail_from)
        self._reply_to = parse_address(settings.mail_reply_to, "MAIL_REPLY_TO") if settings.mail_reply_to else None

    def send(
        self,
        *,
        to: str,
        subject: str,
        html: str,
        text: str,
        notification_id: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        message_bytes(
            mail_from=self._from,
            reply_to=self._reply_to,
            to=to,
            subject=subject,
            html=html,
            text=text,
            notification_id=notification_id,
            headers=headers,
        )
        if to.strip().lower() == PERMANENT_FAILURE_EMAIL:
            raise PermanentProviderError(
                "test mode: simulated bounce (550 mailbox unavailable)", reason=SIMULATED_FAILURE
            )

    def close(self) -> None:
        """Nothing to release."""


class SimulatedPushProvider:
    """Same contract and errors as :class:`providers.push.FcmPushProvider`; sends nothing."""

    def send(self, *, token: str, title: str, body: str, image: str | None, data: dict[str, str]) -> str:
        if token == PERMANENT_FAILURE_TOKEN:
            # Not an InvalidTokenError: that would clear the token from the user, and a test must
            # not change the data it tests with.
            raise PermanentProviderError("test mode: simulated unregistered token", reason=SIMULATED_FAILURE)
        request_body(**notify_kwargs(token=token, title=title, body=body, image=image, data=data))
        return f"projects/simulated/messages/{uuid.uuid4().hex}"

    def close(self) -> None:
        """Nothing to release."""
