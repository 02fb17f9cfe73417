"""One webhook delivery attempt: the signature, and a POST that cannot be turned against Herald
(README, "Webhooks").

The request is signed ``X-Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" keyed with the secret>``. The URL and every address of its host are checked
(:mod:`providers.webhook_address`), and the connection goes to an address that was checked: the
host is never looked up a second time. TLS still verifies the certificate against the host's name.
Redirects are not followed: a 3xx is an answer like any other non-2xx. The whole attempt (lookup,
connect, TLS, request, answer) has ``WEBHOOK_TIMEOUT_S`` [10] in total. A watchdog cuts the
connection at the deadline, so a receiver that answers one byte at a time cannot hold a worker
thread longer than that.

Standard library only (``http.client``): it follows no redirects, reads no proxy from the
environment, and lets the connection go to a chosen address while TLS checks the name.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from providers.webhook_address import Target, Unresolvable, UrlRefused, resolve

SIGNATURE_HEADER = "X-Herald-Signature"
EVENT_ID_HEADER = "X-Herald-Event-ID"
USER_AGENT = "Herald-Webhooks/1"
#: Bytes of a receiver's answer read (and quoted, clipped, in a failed attempt's error).
ANSWER_BYTES = 1024
ANSWER_QUOTED = 200


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Herald-Signature`` value of ``body`` signed at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended. ``error`` ``None``: a 2xx. ``retryable`` False: do not try again."""

    status_code: int | None = None
    error: str | None = None
    reason: str = "webhook_ok"
    retryable: bool = True
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` while ``host`` stays the request's ``Host``."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def __init__(self, target: Target, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target, address, timeout)
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def _cut(connection: http.client.HTTPConnection) -> None:
    """The watchdog: end a connection still in use at the deadline (wakes a blocked read)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _retry_after(response: http.client.HTTPResponse) -> float | None:
    value = (response.getheader("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


class WebhookSender:
    """Parameters:
    allow_private: ``WEBHOOK_ALLOW_PRIVATE``.
    timeout_s: ``WEBHOOK_TIMEOUT_S``, the bound on a whole attempt.
    getaddrinfo: the name lookup (tests give a fixed answer to test the policy).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_s: float,
        getaddrinfo: Callable[..., list] = socket.getaddrinfo,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.getaddrinfo = getaddrinfo
        self.context = context or ssl.create_default_context()

    def post(self, url: str, body: bytes, *, secret: str, event_id: str) -> Outcome:
        """POST ``body`` to ``url``, signed now; never raises for what the network or receiver does."""
        deadline = time.monotonic() + self.timeout_s
        try:
            target = resolve(url, allow_private=self.allow_private, getaddrinfo=self.getaddrinfo)
        except Unresolvable as exc:
            return Outcome(error=str(exc), reason="webhook_unresolvable")
        except UrlRefused as exc:
            return Outcome(error=str(exc), reason="webhook_address_refused", retryable=False)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: event_id,
            SIGNATURE_HEADER: signature(secret, body, int(time.time())),
        }
        return self._exchange(target, body, headers, deadline)

    def _connect(self, target: Target, deadline: float) -> http.client.HTTPConnection | Outcome:
        last = "no address"
        for address in target.addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if target.scheme == "https":
                connection = _PinnedHTTPSConnection(target, address, remaining, self.context)
            else:
                connection = _PinnedHTTPConnection(target, address, remaining)
            try:
                connection.connect()
                return connection
            except TimeoutError:
                connection.close()
                last = "timed out"
            except ssl.SSLError as exc:
                connection.close()
                return Outcome(error=f"TLS failed: {exc.reason or type(exc).__name__}", reason="webhook_tls")
            except OSError as exc:
                connection.close()
                last = exc.strerror or type(exc).__name__
        if deadline - time.monotonic() <= 0:
            return self._timed_out()
        return Outcome(error=f"could not connect: {last}", reason="webhook_connection")

    def _exchange(self, target: Target, body: bytes, headers: dict, deadline: float) -> Outcome:
        connection = self._connect(target, deadline)
        if isinstance(connection, Outcome):
            return connection
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read(ANSWER_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline or isinstance(exc, TimeoutError):
                return self._timed_out()
            return Outcome(error=f"connection failed: {type(exc).__name__}", reason="webhook_connection")
        finally:
            watchdog.cancel()
            connection.close()
        if 200 <= response.status < 300:
            return Outcome(status_code=response.status)
        quoted = answer[:ANSWER_QUOTED].decode("utf-8", "replace").strip()
        return Outcome(
            status_code=response.status,
            error=f"HTTP {response.status}" + (f": {quoted}" if quoted else ""),
            reason=f"webhook_http_{response.status}",
            retry_after_s=_retry_after(response) if response.status in (429, 503) else None,
        )

    def _timed_out(self) -> Outcome:
        return Outcome(error=f"no answer within {self.timeout_s:g} s", reason="webhook_timeout")
