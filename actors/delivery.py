"""The two delivery actors: load nothing, render, hand to the provider, record the outcome.

The message body is self-contained (the design's notification body plus the template snapshot the
gateway checked), so a worker needs neither the user nor the template service to send. Failure
policy is not here: an actor raises a provider error and the middleware decides what follows
(the ``circuit`` option names the provider's breaker). The one exception is a push token FCM calls
invalid: that is a fact about the user, so the token is cleared from the user here.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import dramatiq

from actors.runtime import Runtime
from middleware import TIME_LIMIT_MS
from middleware.dead_letter import UNAVAILABLE, Deferred
from middleware.topology import EMAIL_QUEUE, PUSH_QUEUE
from models.base import utcnow
from models.notification import DELIVERED, FAILED
from models.user import User
from providers.errors import InvalidTokenError, PermanentProviderError
from providers.rendering import Rendered, RenderError

log = logging.getLogger(__name__)


def _render(runtime: Runtime, notification: dict) -> Rendered:
    template = notification["template"]
    try:
        return runtime.renderer.render(subject=template.get("subject") or "", content=template["content"],
                                       variables=notification.get("variables") or {})
    except RenderError as exc:
        raise PermanentProviderError(str(exc), reason="render_failed") from None


def _already_delivered(runtime: Runtime, notification_id: str) -> bool:
    """True when this message must not be sent: its notification was delivered already (a
    redelivery after a crash or broker restart), or it has no record at all (the gateway refused
    the request after an ambiguous publish, and told the client so)."""
    status = runtime.status.current_status(notification_id)
    if status in (DELIVERED, FAILED):
        log.warning("notification already %s; redelivered message dropped", status)
        return True
    if status is None:
        log.warning("no record of this notification; message dropped")
        return True
    return False


def _delivered(runtime: Runtime, notification_id: str) -> None:
    runtime.status.record(notification_id, outcome="delivered", status=DELIVERED)
    log.info("notification delivered")


def _forget_push_token(runtime: Runtime, user_id: str | None, token: str) -> None:
    """Clear an invalid token from the user (only if it is still that token: the app may have
    registered a new one meanwhile) and drop the cached user, so the gateway stops sending to it.

    Best effort: the notification fails either way, and that must not be hidden by this.
    """
    if not user_id or not token:
        return
    try:
        User.update(push_token=None, updated_at=utcnow()).where(
            (User.id == user_id) & (User.push_token == token)).execute()
        runtime.status.redis.delete(runtime.status.keys.user(user_id))
        log.warning("push token refused by FCM; cleared from the user", extra={"user_id": user_id})
    except Exception:
        log.warning("could not clear the refused push token from the user", exc_info=True)


#: Set on a message whose provider accepted it but whose recording failed.
PROVIDER_ACCEPTED = "provider_accepted"
#: Milliseconds a worker holds the send claim on a notification: past the actor's time limit, so a
#: claim outlives any send, yet a crashed worker's claim frees itself soon.
CLAIM_MS = TIME_LIMIT_MS + 10_000


@contextmanager
def _claim(runtime: Runtime, notification_id: str):
    """Only one worker sends a notification at a time. Two copies of a message can exist (a worker
    stopped between publishing a retry and acking the original; a redelivery after a crash); the
    second waits (:class:`Deferred`, re-published with a delay) and then finds it delivered."""
    redis, key = runtime.status.redis, runtime.status.keys.sending(notification_id)
    if not redis.set(key, "1", nx=True, px=CLAIM_MS):
        raise Deferred("another worker is sending this notification")
    try:
        yield
    finally:
        redis.delete(key)


def _deliver(runtime: Runtime, notification: dict, send) -> None:
    """The shape every delivery has: claim, skip what is done, render, ``send(rendered)``, record.

    If recording fails after the provider accepted (PostgreSQL or Redis went away at that moment),
    the message is marked ``provider_accepted`` before the outage path re-publishes it, so the copy
    only records the delivery and never sends a second time.
    """
    nid = notification["notification_id"]
    with _claim(runtime, nid):
        if _already_delivered(runtime, nid):
            return
        if not notification.get(PROVIDER_ACCEPTED):
            send(_render(runtime, notification))
        try:
            _delivered(runtime, nid)
        except UNAVAILABLE:
            notification[PROVIDER_ACCEPTED] = True  # the message's own argument: the copy carries it
            raise


def register(broker: dramatiq.Broker, runtime: Runtime) -> None:
    """Declare ``send_email`` and ``send_push`` on ``broker``, bound to ``runtime``."""

    @dramatiq.actor(broker=broker, actor_name="send_email", queue_name=EMAIL_QUEUE, circuit="smtp")
    def send_email(notification: dict) -> None:
        nid = notification["notification_id"]

        def send(rendered: Rendered) -> None:
            runtime.email.send(
                to=notification["user_email"], subject=rendered.subject, html=rendered.html, text=rendered.text,
                notification_id=nid,
            )

        _deliver(runtime, notification, send)

    @dramatiq.actor(broker=broker, actor_name="send_push", queue_name=PUSH_QUEUE, circuit="fcm")
    def send_push(notification: dict) -> None:
        variables = notification.get("variables") or {}
        data = {"notification_id": notification["notification_id"]}
        if variables.get("link"):
            data["link"] = str(variables["link"])
        token = notification.get("user_push_token") or ""

        def send(rendered: Rendered) -> None:
            try:
                runtime.push.send(token=token, title=rendered.subject, body=rendered.text,
                                  image=variables.get("image"), data=data)
            except InvalidTokenError:
                _forget_push_token(runtime, notification.get("user_id"), token)
                raise

        _deliver(runtime, notification, send)
