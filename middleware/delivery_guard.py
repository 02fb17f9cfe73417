"""DeliveryGuard: one sender per notification, nothing sent twice, every delivery recorded.

Around each delivery actor (``send_email``, ``send_push``) it:

1. takes the send claim, a Redis ``SET NX PX`` on ``sending:<id>``: two copies of a message can
   exist (a worker stopped between publishing a retry and acking the original; a redelivery after
   a crash), and the second one waits (re-published after :data:`CLAIM_WAIT_MS`) instead of
   sending alongside the first;
2. drops a message whose notification is no longer ``scheduled`` or ``pending`` (delivered,
   failed, cancelled, expired), or has no record at all (the gateway refused the request after an
   ambiguous publish, and told the client so); a notification past its ``expires_at`` ends
   ``expired`` here, whatever it waited in (the queue, a retry, an open breaker);
3. after the actor returns (the provider accepted), records ``delivered`` and ends the claim in
   the same Redis round trip as the status hash. If PostgreSQL or Redis fails at that moment, a
   copy marked ``provider_accepted`` is re-published after the outage delay and the copy only
   records: the provider is never asked twice (README, "Failure behaviour").

The claim lives a little longer than the actor's time limit, so it outlives any send, yet a
crashed worker's claim frees itself soon.
"""

from __future__ import annotations

import logging
import threading

from dramatiq import Middleware
from dramatiq.middleware import MiddlewareError, SkipMessage

from messaging.messages import (
    PROVIDER_ACCEPTED,
    RECORD_ONLY,
    RECORDED,
    RETRY_SCHEDULED,
    ms_until_expiry,
    notification_of,
)
from messaging.topology import CHANNEL_OF_ACTOR
from middleware.outage import OUTAGE_DELAY_MS, StoreAway
from models.base import utcnow
from models.group_commit import GroupCommit
from models.notification import DELIVERED, EXPIRED, OPEN_STATUSES
from models.unavailable import UNAVAILABLE

log = logging.getLogger(__name__)

#: How long a message waits while another worker holds its notification's claim.
CLAIM_WAIT_MS = 5_000
#: The error an expired notification keeps.
EXPIRED_ERROR = "expired before it was handed to the provider"


class CheckFailed(MiddlewareError):
    """The checks before a send failed for a reason other than an outage (a defect)."""


class DeliveryGuard(Middleware):
    """Parameters:
    status: the :class:`~models.status_writer.StatusWriter` (its Redis client holds the claims).
    claim_ms: how long a claim lives, in milliseconds; longer than any send.
    """

    def __init__(self, *, status, claim_ms: int) -> None:
        self.status = status
        self.claim_ms = claim_ms
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._deliveries = GroupCommit(self._record_delivered)

    def before_process_message(self, broker, message):
        """Raises ``SkipMessage`` or :class:`~middleware.outage.StoreAway` when the message must
        not be sent now, never anything else: dramatiq would log any other exception and run the
        actor, unclaimed and unchecked."""
        nid = self._notification_id(message)
        if nid is None:
            return
        try:
            self._admit(broker, message, nid)
        except MiddlewareError:
            raise
        except UNAVAILABLE as exc:
            raise StoreAway(f"{type(exc).__name__} before sending") from exc
        except Exception as exc:  # a defect: the message is dead-lettered, not sent unchecked
            raise CheckFailed(f"{type(exc).__name__}: {exc}") from exc

    def _admit(self, broker, message, nid: str) -> None:
        if not self.status.redis.set(self.status.keys.sending(nid), "1", nx=True, px=self.claim_ms):
            self._wait_for_claim(broker, message)
        with self._lock:
            self._held.add(message.message_id)
        status = self.status.current_status(nid)
        if status is None:
            log.warning("no record of this notification; message dropped")
            raise SkipMessage("no record")
        if status not in OPEN_STATUSES:
            log.warning("notification already %s; message dropped", status)
            raise SkipMessage(f"already {status}")
        if message.options.get(PROVIDER_ACCEPTED):
            self._record(message, nid)  # an outage here raises, and the outage middleware re-publishes the copy
            message.options[RECORDED] = DELIVERED
            raise SkipMessage("provider accepted earlier; delivery recorded")
        if ms_until_expiry(message, utcnow()) == 0:
            if self.status.record(nid, outcome=EXPIRED, status=EXPIRED, error=EXPIRED_ERROR, only_from=OPEN_STATUSES):
                message.options[RECORDED] = EXPIRED
                log.info("notification expired before it was sent")
            raise SkipMessage("expired")

    @staticmethod
    def _wait_for_claim(broker, message) -> None:
        try:
            broker.enqueue(message.copy(), delay=CLAIM_WAIT_MS)
        except Exception:
            # Neither sent nor dropped: the dead-letter queue keeps it for an operator's replay (if
            # the broker is away, the nack cannot reach it either and RabbitMQ redelivers it).
            log.exception("the send claim is held elsewhere and the message could not wait", extra={"alert": True})
            message.fail()
            raise SkipMessage("send claim held elsewhere; the wait could not be published") from None
        log.info("another worker is sending this notification; the message waits %d ms", CLAIM_WAIT_MS)
        raise SkipMessage("send claim held elsewhere")

    def after_process_message(self, broker, message, *, result=None, exception=None):
        nid = self._notification_id(message)
        if nid is None:
            return
        try:
            if exception is None:
                self._record_or_defer(broker, message, nid)
        finally:
            self._release(message, nid)

    def after_skip_message(self, broker, message):
        nid = self._notification_id(message)
        if nid is not None:
            self._release(message, nid)

    def _record(self, message, nid: str) -> None:
        """Record ``delivered``, with the deliveries other threads of this process are recording
        (one UPDATE and one Redis round trip for the group: :mod:`models.group_commit`). The claim
        goes in the status mirror's round trip (or expires if Redis fails then), so ``_release`` has
        nothing left to do; an outage raises with the claim still held, and ``_release`` gives it
        back."""
        self._deliveries.submit(nid)
        with self._lock:
            self._held.discard(message.message_id)
        log.info("notification delivered")

    def _record_delivered(self, nids: list[str]) -> list:
        claims = [self.status.keys.sending(nid) for nid in nids]
        return self.status.record_many(nids, outcome="delivered", status=DELIVERED, release=claims)

    def _record_or_defer(self, broker, message, nid: str) -> None:
        try:
            self._record(message, nid)
        except UNAVAILABLE as exc:
            log.warning("delivery not recorded (%s); a copy records it in %d ms", type(exc).__name__, OUTAGE_DELAY_MS)
            try:
                broker.enqueue(message.copy(options={PROVIDER_ACCEPTED: True}), delay=OUTAGE_DELAY_MS)
            except Exception:
                log.exception(
                    "delivered but neither recorded nor re-published; it goes to the dead-letter queue",
                    extra={"alert": True},
                )
                message.fail()
                return
            message.options[RETRY_SCHEDULED] = RECORD_ONLY
            return
        message.options[RECORDED] = DELIVERED

    def _release(self, message, nid: str) -> None:
        with self._lock:
            if message.message_id not in self._held:
                return
            self._held.discard(message.message_id)
        try:
            self.status.redis.delete(self.status.keys.sending(nid))
        except UNAVAILABLE:
            log.warning("send claim not released; it expires in %d ms", self.claim_ms)

    @staticmethod
    def _notification_id(message) -> str | None:
        if message.actor_name not in CHANNEL_OF_ACTOR:
            return None
        return notification_of(message).get("notification_id")
