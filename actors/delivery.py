"""The two delivery actors: render the notification and hand it to the provider, nothing more.

The message body is self-contained (the gateway's checked request plus the template snapshot it
checked), so a worker needs neither the user nor the template service to send. Everything around
the send is middleware (ARCHITECTURE.md, "Where each policy lives"): the claim, the
already-delivered check and the recording of ``delivered`` (DeliveryGuard), retries, the breaker
named by the ``circuit`` option, the dead-letter queue. The one thing decided here is a push token
FCM calls invalid: that is a fact about the user, so the token is cleared from the user.

A test-mode notification (``mode: test``, sent with an ``hk_test_`` key) goes the same way to the
simulated providers (:meth:`actors.runtime.Runtime.email_for`) and never changes the user.
"""

from __future__ import annotations

import logging

import dramatiq

from actors.runtime import Runtime
from messaging.messages import body_mode
from messaging.topology import EMAIL_QUEUE, PUSH_QUEUE
from middleware.circuit_breaker import FCM, SMTP
from models.dao import users
from models.notification import TEST
from providers.errors import InvalidTokenError, PermanentProviderError
from providers.rendering import Rendered, RenderError

log = logging.getLogger(__name__)


def _render(runtime: Runtime, notification: dict) -> Rendered:
    template = notification["template"]
    try:
        return runtime.renderer.render(
            subject=template.get("subject") or "",
            content=template["content"],
            variables=notification.get("variables") or {},
        )
    except RenderError as exc:
        raise PermanentProviderError(str(exc), reason="render_failed") from None


def _forget_push_token(runtime: Runtime, user_id: str | None, token: str) -> None:
    """Clear an invalid token from the user and drop the cached user, so the gateway stops sending
    to it. Best effort: the notification fails either way, and that must not be hidden by this."""
    if not user_id or not token:
        return
    try:
        users.clear_push_token(user_id, token)
        runtime.status.redis.delete(runtime.status.keys.user(user_id))
        log.warning("push token refused by FCM; cleared from the user", extra={"user_id": user_id})
    except Exception:
        log.warning("could not clear the refused push token from the user", exc_info=True)


def register(broker: dramatiq.Broker, runtime: Runtime) -> None:
    """Declare ``send_email`` and ``send_push`` on ``broker``, bound to ``runtime``."""

    @dramatiq.actor(broker=broker, actor_name="send_email", queue_name=EMAIL_QUEUE, circuit=SMTP)
    def send_email(notification: dict) -> None:
        nid = notification["notification_id"]
        rendered = _render(runtime, notification)
        runtime.email_for(body_mode(notification)).send(
            to=notification["user_email"],
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            notification_id=nid,
        )

    @dramatiq.actor(broker=broker, actor_name="send_push", queue_name=PUSH_QUEUE, circuit=FCM)
    def send_push(notification: dict) -> None:
        variables = notification.get("variables") or {}
        data = {"notification_id": notification["notification_id"]}
        if variables.get("link"):
            data["link"] = str(variables["link"])
        token = notification.get("user_push_token") or ""
        mode = body_mode(notification)
        rendered = _render(runtime, notification)
        try:
            runtime.push_for(mode).send(
                token=token, title=rendered.subject, body=rendered.text, image=variables.get("image"), data=data
            )
        except InvalidTokenError:
            if mode != TEST:
                _forget_push_token(runtime, notification.get("user_id"), token)
            raise
