"""Circuit breaker per provider, shared by every worker process through the Redis hash
``circuit:<name>`` (fields ``state``, ``failure_count``, ``last_failure_time``, ``success_count``).

The state machine is :class:`BreakerState`, pure and unit-tested; :class:`SharedBreaker` only moves
it in and out of Redis, with WATCH/MULTI so two processes cannot both act on a stale read, and
Redis's own clock so worker hosts need not agree on the time. While a circuit is open a message
does not reach the provider and does not spend a retry: it is re-published with a delay until the
recovery time (or its ``expires_at``, whichever is sooner) and skipped (``SkipMessage`` acks the
original); an expired message is let through, to be ended ``expired`` by the delivery guard without
reaching the provider. Half-open lets one
probe through at a time, chosen by a lease key (``SET NX PX``) so a crashed probe frees it.

Only retryable provider errors count as failures: a permanent error (a bounce, a bad token) is the
provider answering, not the provider being down. If Redis itself is away, the breaker lets
messages through: the backoff still bounds what a failing provider costs.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass

import redis.exceptions
from dramatiq import Middleware
from dramatiq.middleware import SkipMessage

from messaging.messages import CIRCUIT_DEFERRALS, mode_of, ms_until_expiry
from models.base import utcnow
from models.notification import TEST
from providers.errors import RetryableProviderError

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"
ALLOW, PROBE, WAIT = "allow", "probe", "wait"

#: The providers' breakers, named by the delivery actors' ``circuit`` option.
SMTP, FCM = "smtp", "fcm"
BREAKERS = (SMTP, FCM)
#: How long a probe may hold the half-open lease; longer than any bounded send.
PROBE_LEASE_MS = 60_000
#: How long a message waits while another worker's probe is out.
PROBE_WAIT_MS = 1_000
#: Shortest deferral, so a circuit about to turn half-open does not spin.
MIN_WAIT_MS = 50
#: Optimistic-transaction attempts before giving up on one transition, and the longest random
#: pause between two (so contending workers spread out instead of colliding again).
MAX_CAS_ATTEMPTS = 100
CAS_PAUSE_S = 0.002

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Policy:
    """The settings' thresholds: ``CIRCUIT_FAILURE_THRESHOLD``, ``CIRCUIT_RECOVERY_TIMEOUT_S``,
    ``CIRCUIT_SUCCESS_THRESHOLD``."""

    failure_threshold: int
    recovery_timeout_s: float
    success_threshold: int

    @classmethod
    def from_settings(cls, settings) -> Policy:
        return cls(
            failure_threshold=settings.circuit_failure_threshold,
            recovery_timeout_s=settings.circuit_recovery_timeout_s,
            success_threshold=settings.circuit_success_threshold,
        )


@dataclass(frozen=True)
class Admission:
    """What a message may do now: ``allow``, ``probe`` (allowed if it wins the lease) or ``wait``."""

    kind: str
    wait_s: float = 0.0
    probe: bool = False


@dataclass(frozen=True)
class BreakerState:
    """One circuit's state; every method returns a new state and never reads a clock."""

    state: str = CLOSED
    failure_count: int = 0
    success_count: int = 0
    last_failure_time: float = 0.0

    def tick(self, now: float, policy: Policy) -> BreakerState:
        """OPEN becomes HALF_OPEN once the recovery timeout since the opening failure has passed."""
        if self.state == OPEN and now >= self.last_failure_time + policy.recovery_timeout_s:
            return dataclasses.replace(self, state=HALF_OPEN, success_count=0)
        return self

    def admission(self, now: float, policy: Policy) -> Admission:
        """What a message may do in this state (call :meth:`tick` first)."""
        if self.state == CLOSED:
            return Admission(ALLOW)
        if self.state == HALF_OPEN:
            return Admission(PROBE)
        return Admission(WAIT, max(0.0, self.last_failure_time + policy.recovery_timeout_s - now))

    def on_success(self, policy: Policy) -> BreakerState:
        """CLOSED forgets its failures (they must be consecutive); HALF_OPEN closes after enough
        successes. A late success while OPEN (sent before it opened) proves nothing."""
        if self.state == CLOSED:
            return dataclasses.replace(self, failure_count=0) if self.failure_count else self
        if self.state == HALF_OPEN:
            count = self.success_count + 1
            if count >= policy.success_threshold:
                return dataclasses.replace(self, state=CLOSED, failure_count=0, success_count=0)
            return dataclasses.replace(self, success_count=count)
        return self

    def on_failure(self, now: float, policy: Policy) -> BreakerState:
        """CLOSED opens at the threshold; any HALF_OPEN failure reopens. A late failure while OPEN
        does not push the recovery time back, so recovery is not starved by stragglers."""
        if self.state == CLOSED:
            count = self.failure_count + 1
            state = OPEN if count >= policy.failure_threshold else CLOSED
            return BreakerState(state=state, failure_count=count, success_count=0, last_failure_time=now)
        if self.state == HALF_OPEN:
            return BreakerState(
                state=OPEN, failure_count=self.failure_count + 1, success_count=0, last_failure_time=now
            )
        return self

    def to_hash(self) -> dict[str, str]:
        return {
            "state": self.state,
            "failure_count": str(self.failure_count),
            "success_count": str(self.success_count),
            "last_failure_time": repr(self.last_failure_time),
        }

    @classmethod
    def from_hash(cls, fields: dict) -> BreakerState:
        """Tolerant of a missing key (CLOSED), of bytes and of a hand-edited hash."""
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}

        def text(name: str) -> str:
            value = fields.get(name, "")
            return value.decode() if isinstance(value, bytes) else str(value)

        state = text("state")
        try:
            return cls(
                state=state if state in (CLOSED, OPEN, HALF_OPEN) else CLOSED,
                failure_count=int(text("failure_count") or 0),
                success_count=int(text("success_count") or 0),
                last_failure_time=float(text("last_failure_time") or 0.0),
            )
        except ValueError:
            return cls()


def queue_state_reads(pipe, keys) -> None:
    """Add a read of every breaker's hash to ``pipe`` (blocking or asyncio), for :func:`read_states`."""
    for name in BREAKERS:
        pipe.hgetall(keys.circuit(name))


def read_states(results) -> dict[str, str]:
    """Each breaker's state from the results of :func:`queue_state_reads`; a missing hash is CLOSED."""
    return {name: BreakerState.from_hash(fields or {}).state for name, fields in zip(BREAKERS, results, strict=True)}


class SharedBreaker:
    """One circuit in Redis. Two instances on the same key behave as one breaker."""

    def __init__(self, *, redis, key: str, probe_key: str, policy: Policy) -> None:
        self.redis = redis
        self.key = key
        self.probe_key = probe_key
        self.policy = policy
        self._release = redis.register_script(_RELEASE)

    def read(self) -> BreakerState:
        return BreakerState.from_hash(self.redis.hgetall(self.key))

    def admit(self, holder: str) -> Admission:
        """``allow`` or ``wait``; in HALF_OPEN ``holder`` (the message id) must win the probe lease."""
        state, now = self._apply(lambda s, now: s.tick(now, self.policy))
        admission = state.admission(now, self.policy)
        if admission.kind != PROBE:
            return admission
        if (
            self.redis.set(self.probe_key, holder, nx=True, px=PROBE_LEASE_MS)
            or self.redis.get(self.probe_key) == holder
        ):
            return Admission(ALLOW, probe=True)
        return Admission(WAIT, min(PROBE_WAIT_MS / 1000, self.policy.recovery_timeout_s))

    def record_success(self) -> BreakerState:
        return self._apply(lambda s, now: s.on_success(self.policy))[0]

    def record_failure(self) -> BreakerState:
        return self._apply(lambda s, now: s.on_failure(now, self.policy))[0]

    def release_probe(self, holder: str) -> None:
        self._release(keys=[self.probe_key], args=[holder])

    def _now_and_fields(self, pipe) -> tuple[float, dict]:
        seconds, micros = pipe.time()
        return seconds + micros / 1e6, pipe.hgetall(self.key)

    def _apply(self, change) -> tuple[BreakerState, float]:
        """Read, change and write the hash as one optimistic transaction; the hash is written when
        missing too, so a closed circuit is visible to monitors.

        Most calls change nothing (a success while closed), so a plain read in one round trip
        comes first and the WATCH transaction only when there is something to write.
        """
        seconds_micros, fields = self.redis.pipeline(transaction=False).time().hgetall(self.key).execute()
        now = seconds_micros[0] + seconds_micros[1] / 1e6
        current = BreakerState.from_hash(fields)
        if fields and change(current, now) == current:
            return current, now
        with self.redis.pipeline() as pipe:
            for _ in range(MAX_CAS_ATTEMPTS):
                try:
                    pipe.watch(self.key)
                    now, fields = self._now_and_fields(pipe)
                    current = BreakerState.from_hash(fields)
                    new = change(current, now)
                    if new == current and fields:
                        pipe.unwatch()
                        return new, now
                    pipe.multi()
                    pipe.hset(self.key, mapping=new.to_hash())
                    pipe.execute()
                    if new.state != current.state:
                        log.warning(
                            "circuit %s: %s -> %s",
                            self.key,
                            current.state,
                            new.state,
                            extra={"circuit": self.key, "state": new.state},
                        )
                    return new, now
                except redis.exceptions.WatchError:
                    time.sleep(random.uniform(0, CAS_PAUSE_S))
        raise redis.exceptions.WatchError(f"{self.key}: too much contention")


class CircuitBreaker(Middleware):
    """Applies the breaker named by the actor option ``circuit`` (``smtp``, ``fcm``).

    Parameters:
        redis: a synchronous client (``decode_responses=True``).
        keys: :class:`models.redis_keys.RedisKeys`, for ``circuit:<name>`` behind the prefix.
        policy: the thresholds.
    """

    def __init__(self, *, redis, keys, policy: Policy) -> None:
        self.redis = redis
        self.keys = keys
        self.policy = policy
        self._breakers: dict[str, SharedBreaker] = {}
        #: Ids of messages of this process holding a probe lease, released after their attempt.
        self._probes: set[str] = set()

    @property
    def actor_options(self):
        return {"circuit"}

    def breaker(self, name: str) -> SharedBreaker:
        if name not in self._breakers:
            self._breakers[name] = SharedBreaker(
                redis=self.redis,
                key=self.keys.circuit(name),
                probe_key=self.keys.circuit_probe(name),
                policy=self.policy,
            )
        return self._breakers[name]

    def _of(self, broker, message) -> SharedBreaker | None:
        """The message's breaker; none for a test-mode notification, which never reaches the
        provider and so must neither wait for its circuit nor count towards it."""
        if mode_of(message) == TEST:
            return None
        name = broker.get_actor(message.actor_name).options.get("circuit")
        return self.breaker(name) if name else None

    def before_process_message(self, broker, message):
        breaker = self._of(broker, message)
        if breaker is None:
            return
        left_ms = ms_until_expiry(message, utcnow())
        if left_ms == 0:
            return  # expired: it goes on only to be ended ``expired``, without touching the provider
        try:
            admission = breaker.admit(message.message_id)
        except redis.exceptions.RedisError as exc:
            log.warning("circuit state unavailable (%s); the message goes through", type(exc).__name__)
            return
        if admission.probe:
            self._probes.add(message.message_id)
        if admission.kind != WAIT:
            return
        delay = max(MIN_WAIT_MS, int(admission.wait_s * 1000))
        if left_ms is not None:
            delay = min(delay, left_ms + 1)  # back when it expires, to be ended then
        deferrals = int(message.options.get(CIRCUIT_DEFERRALS) or 0) + 1
        try:
            broker.enqueue(message.copy(options={CIRCUIT_DEFERRALS: deferrals}), delay=delay)
        except Exception:
            log.exception("could not defer the message; it goes through despite the open circuit")
            return
        log.info(
            "circuit %s not admitting (open, or a probe is out): message deferred %d ms (deferral %d)",
            breaker.key,
            delay,
            deferrals,
        )
        raise SkipMessage(f"circuit {breaker.key} open")

    def after_process_message(self, broker, message, *, result=None, exception=None):
        breaker = self._of(broker, message)
        if breaker is None:
            return
        try:
            if exception is None:
                breaker.record_success()
            elif isinstance(exception, RetryableProviderError):
                breaker.record_failure()
        except redis.exceptions.RedisError as exc:
            log.warning("circuit state not updated (%s)", type(exc).__name__)
        finally:
            self._release(breaker, message)

    def after_skip_message(self, broker, message):
        breaker = self._of(broker, message)
        if breaker is not None:
            self._release(breaker, message)

    def _release(self, breaker: SharedBreaker, message) -> None:
        if message.message_id not in self._probes:
            return
        self._probes.discard(message.message_id)
        try:
            breaker.release_probe(message.message_id)
        except redis.exceptions.RedisError:
            log.warning("probe lease not released; it expires in %d ms", PROBE_LEASE_MS)
