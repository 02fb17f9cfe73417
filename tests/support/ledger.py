"""Jepsen-style counting for the fault suite: every send attempt's outcome is written down, and at
the end it is reconciled with what the SMTP server received and with the notification statuses.

Each send carries its ``request_id`` in the template variables and the template puts it in the
subject, so every received mail maps back to the request it came from, whatever the gateway
answered to it (a 202, a 503, or nothing at all: a client timeout). The counts:

* ``accepted``: answered 202 (the contract's promise: it will be delivered);
* ``delivered``: accepted and received at least once by the SMTP server;
* ``lost``: accepted and never received (or not ``delivered`` in the record);
* ``duplicated``: received more than once (copies beyond the first are ``extra_copies``);
* ``refused_503``: answered 503 SERVICE_UNAVAILABLE; ``delivered_after_503`` counts those that
  were sent anyway (a 503 must leave nothing behind that a worker would deliver);
* ``unknown``: no answer (client timeout, connection error); ``recovered`` counts those delivered
  (allowed: the outcome was never known to the client);
* ``other``: any other answer, by status code (``other_statuses``);
* ``bad_status``: accepted notifications whose recorded status is not ``delivered``;
* ``unexpected``: mails that match no request of this ledger.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

ACCEPTED, REFUSED, UNKNOWN, OTHER = "accepted", "refused_503", "unknown", "other"


@dataclass
class Attempt:
    request_id: str
    status: int | None  # HTTP status, None when no answer came
    notification_id: str | None = None
    error: str | None = None
    started: float = 0.0  # time.monotonic() when sent and when answered
    finished: float = 0.0

    @property
    def outcome(self) -> str:
        if self.status == 202 and self.notification_id:
            return ACCEPTED
        if self.status == 503:
            return REFUSED
        if self.status is None:
            return UNKNOWN
        return OTHER


@dataclass
class Reconciliation:
    name: str
    counts: dict[str, int]
    lost_ids: list[str] = field(default_factory=list)  # notification ids
    duplicated_ids: dict[str, int] = field(default_factory=dict)  # notification id -> copies received
    bad_statuses: dict[str, str] = field(default_factory=dict)  # notification id -> status
    after_503_ids: list[str] = field(default_factory=list)  # request ids
    unexpected_subjects: list[str] = field(default_factory=list)  # mails matching no request
    other_statuses: dict[int, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        try:
            return self.__dict__["counts"][name]
        except KeyError:
            raise AttributeError(name) from None

    def line(self) -> str:
        keys = (
            "attempts",
            "accepted",
            "delivered",
            "lost",
            "duplicated",
            "extra_copies",
            "refused_503",
            "delivered_after_503",
            "unknown",
            "recovered",
            "other",
            "bad_status",
            "unexpected",
        )
        text = " ".join(f"{k}={self.counts[k]}" for k in keys)
        if self.other_statuses:
            text += " other_statuses=" + ",".join(f"{k}:{v}" for k, v in sorted(self.other_statuses.items()))
        return f"ledger[{self.name}]: {text}"

    def details(self) -> str:
        return (
            f"lost={self.lost_ids[:20]} duplicated={dict(list(self.duplicated_ids.items())[:20])} "
            f"bad_status={dict(list(self.bad_statuses.items())[:20])} "
            f"delivered_after_503={self.after_503_ids[:20]} unexpected={self.unexpected_subjects[:20]}"
        )


class Ledger:
    """Thread-safe record of send attempts; ``reconcile`` does the counting."""

    def __init__(self, name: str, *, request_prefix: str) -> None:
        self.name = name
        self.request_prefix = request_prefix
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._seq = 0

    def next_request_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"{self.request_prefix}-{self._seq:05d}"

    def record(
        self, request_id: str, status: int | None, notification_id: str | None = None, error: str | None = None
    ) -> Attempt:
        attempt = Attempt(request_id, status, notification_id, error)
        with self._lock:
            self.attempts.append(attempt)
        return attempt

    def accepted(self) -> dict[str, str]:
        """notification id -> request id, for every 202."""
        with self._lock:
            return {a.notification_id: a.request_id for a in self.attempts if a.outcome == ACCEPTED}

    def count(self, outcome: str) -> int:
        with self._lock:
            return sum(1 for a in self.attempts if a.outcome == outcome)

    def reconcile(self, mails, statuses: dict[str, str]) -> Reconciliation:
        """``mails``: what the SMTP server received (``ReceivedMail``); ``statuses``: notification id ->
        status as recorded (see :func:`statuses_from_database`)."""
        with self._lock:
            attempts = list(self.attempts)
        by_request = {a.request_id: a for a in attempts}
        accepted = {a.notification_id: a for a in attempts if a.outcome == ACCEPTED}
        copies: Counter[str] = Counter()  # notification id -> copies received
        request_copies: Counter[str] = Counter()  # request id -> copies received
        unexpected = []
        for mail in mails:
            msg = mail.message
            nid = (msg.get("X-Herald-Notification-ID") or "").strip()
            if not nid:
                nid = (msg.get("Message-ID") or "").strip().strip("<>").split("@")[0]
            subject = str(msg.get("Subject") or "").strip()
            if subject not in by_request:
                unexpected.append(subject)
                continue
            copies[nid] += 1
            request_copies[subject] += 1
        lost = [nid for nid in accepted if copies[nid] == 0]
        duplicated = {nid: n for nid, n in copies.items() if n > 1}
        bad_status = {nid: statuses.get(nid) or "missing" for nid in accepted if statuses.get(nid) != "delivered"}
        after_503 = [a.request_id for a in attempts if a.outcome == REFUSED and request_copies[a.request_id]]
        recovered = [a.request_id for a in attempts if a.outcome == UNKNOWN and request_copies[a.request_id]]
        others = Counter(a.status for a in attempts if a.outcome == OTHER)
        counts = {
            "attempts": len(attempts),
            "accepted": len(accepted),
            "delivered": sum(1 for nid in accepted if copies[nid] > 0),
            "lost": len(lost),
            "duplicated": len(duplicated),
            "extra_copies": sum(n - 1 for n in duplicated.values()),
            "refused_503": sum(1 for a in attempts if a.outcome == REFUSED),
            "delivered_after_503": len(after_503),
            "unknown": sum(1 for a in attempts if a.outcome == UNKNOWN),
            "recovered": len(recovered),
            "other": sum(others.values()),
            "bad_status": len(bad_status),
            "unexpected": len(unexpected),
        }
        return Reconciliation(
            self.name,
            counts,
            lost_ids=lost,
            duplicated_ids=duplicated,
            bad_statuses=bad_status,
            after_503_ids=after_503,
            unexpected_subjects=unexpected,
            other_statuses=dict(others),
        )

    def report(self, result: Reconciliation, path: Path | None = None) -> str:
        """Print the summary line (``pytest -s`` shows it) and write it, with details, to ``path``."""
        line = result.line()
        print("\n" + line, flush=True)
        if path is not None:
            Path(path).write_text(line + "\n" + result.details() + "\n")
        return line


def statuses_from_database(dsn: str, notification_ids) -> dict[str, str]:
    """notification id -> status, read from PostgreSQL directly (not through any proxy)."""
    ids = list(notification_ids)
    if not ids:
        return {}
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT notification_id::text, status FROM notification_status WHERE notification_id::text = ANY(%s)",
                (ids,),
            )
            return dict(cur.fetchall())
    finally:
        conn.close()
