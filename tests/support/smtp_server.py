"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, with switchable faults.

Usage::

    with smtp_server() as smtp:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port)}   # or smtp.env
        ...send...
        smtp.wait_for(1)                       # blocks until one message arrived
        msg = smtp.messages[0].message         # email.message.EmailMessage
        smtp.fail_with(451)                    # DATA answered 451 from now on
        smtp.fail_with(550, stage="rcpt", times=1)   # only the next RCPT is refused
        smtp.clear_failure()
        smtp.drop_connections()                # the server hangs up on idle clients
        smtp.restart()                         # stop and start again on the same port
        smtp.connections                       # how many SMTP sessions were opened

    with smtp_server(tls="starttls", cert_dir=tmp_path) as smtp:   # or tls="ssl" (implicit TLS)
        smtp.certfile                          # self-signed for 127.0.0.1; point SSL_CERT_FILE at it to trust it

It speaks real SMTP over TCP, so the code under test runs exactly as in production.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.ports import free_port

#: Texts sent with a configured failure code.
_REASONS = {
    421: "421 4.3.2 Service shutting down",
    450: "450 4.2.1 Mailbox busy, try later",
    451: "451 4.3.0 Temporary local problem, try later",
    452: "452 4.3.1 Insufficient system storage",
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.3.4 Message too big",
    554: "554 5.7.1 Message rejected",
}


def write_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed CA certificate for 127.0.0.1 and localhost, and its key; returns (certfile, keyfile)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = Path(directory) / "smtp-cert.pem", Path(directory) / "smtp-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certfile, keyfile


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage


@dataclass
class _Failure:
    code: int
    stage: str
    remaining: int | None

    def reply(self) -> str:
        return _REASONS.get(self.code, f"{self.code} Configured test failure")


@dataclass
class SmtpServer:
    """Handle on the running server; see the module docstring."""

    port: int
    host: str = "127.0.0.1"
    messages: list[ReceivedMail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)  # user names of every AUTH attempt
    connections: int = 0
    _auth: tuple[str, str] | None = None
    tls: str | None = None
    certfile: Path | None = None
    _server_ctx: ssl.SSLContext | None = None
    _failure: _Failure | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _controller: Controller | None = None
    _sessions: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    _skip_next: bool = False

    @property
    def env(self) -> dict[str, str]:
        """Herald's settings for this server (plain SMTP; credentials when it requires AUTH)."""
        env = {
            "SMTP_HOST": self.host,
            "SMTP_PORT": str(self.port),
            "SMTP_STARTTLS": str(self.tls == "starttls").lower(),
            "SMTP_SSL": str(self.tls == "ssl").lower(),
        }
        if self._auth:
            env.update(SMTP_USERNAME=self._auth[0], SMTP_PASSWORD=self._auth[1])
        return env

    def fail_with(self, code: int, *, stage: str = "data", times: int | None = None) -> None:
        """Answer ``code`` at ``stage`` ("mail", "rcpt" or "data"); ``times`` None means until cleared."""
        if stage not in ("mail", "rcpt", "data"):
            raise ValueError(f"stage must be mail, rcpt or data, not {stage!r}")
        with self._cond:
            self._failure = _Failure(code, stage, times)

    def clear_failure(self) -> None:
        """Accept messages normally again."""
        with self._cond:
            self._failure = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(self.messages)} in {timeout} s")
                self._cond.wait(left)
            return list(self.messages)

    def drop_connections(self) -> None:
        """Close every open client connection from the server side, as an idle timeout would."""
        controller = self._controller
        if controller is None:
            return
        done = threading.Event()

        def close_all() -> None:
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close_all)
        done.wait(5)

    def stop(self) -> None:
        """Stop listening and drop all connections (the port then refuses connections)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def start(self) -> None:
        """Listen on ``port`` (again)."""
        if self._controller is not None:
            return
        kwargs: dict = {}
        if self._auth:
            kwargs = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
            # AUTH over plain TCP is deliberate on a loopback test server. Set here, not at import,
            # because pytest restores the warning filters after collection and after each test.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning)
        if self.tls == "starttls":
            kwargs.update(tls_context=self._server_ctx, require_starttls=True)
        elif self.tls == "ssl":
            kwargs.update(ssl_context=self._server_ctx)
        controller = _TrackingController(self, _Handler(self), hostname=self.host, port=self.port, **kwargs)
        self._skip_next = True  # Controller.start() opens one probe connection of its own
        controller.start()
        self._controller = controller

    def restart(self) -> None:
        """Stop, then start on the same port: clients' open connections are gone."""
        self.stop()
        self.start()

    def _take_failure(self, stage: str) -> str | None:
        with self._cond:
            failure = self._failure
            if failure is None or failure.stage != stage:
                return None
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            return failure.reply()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self._auth is None:
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        with self._cond:
            self.logins.append(user)
        # handled=False lets aiosmtpd answer 535 itself on a wrong password.
        return AuthResult(success=(user, password) == self._auth, handled=False)


class _TrackingController(Controller):
    def __init__(self, owner: SmtpServer, handler, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner

    def factory(self):
        session = super().factory()
        owner = self._owner
        if owner._skip_next:
            owner._skip_next = False
        else:
            with owner._cond:
                owner.connections += 1
        owner._sessions.add(session)
        return session


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self._owner = owner

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        failure = self._owner._take_failure("mail")
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        failure = self._owner._take_failure("rcpt")
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        failure = self._owner._take_failure("data")
        if failure:
            return failure
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        mail = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=data,
            message=message_from_bytes(data, policy=policy.default),
        )
        owner = self._owner
        with owner._cond:
            owner.messages.append(mail)
            owner._cond.notify_all()
        return "250 2.0.0 Message accepted for delivery"


@contextmanager
def smtp_server(
    *,
    port: int | None = None,
    auth: tuple[str, str] | None = None,
    tls: str | None = None,
    cert_dir: Path | None = None,
) -> Iterator[SmtpServer]:
    """Run an SMTP server for the block.

    ``auth=(user, password)`` makes it require AUTH PLAIN/LOGIN. ``tls="starttls"`` requires STARTTLS,
    ``tls="ssl"`` speaks implicit TLS; both use a self-signed certificate written into ``cert_dir``.
    """
    server = SmtpServer(port=port or free_port(), _auth=auth, tls=tls)
    if tls is not None:
        if tls not in ("starttls", "ssl") or cert_dir is None:
            raise ValueError("tls must be 'starttls' or 'ssl', and needs cert_dir")
        server.certfile, keyfile = write_self_signed_cert(cert_dir)
        server._server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server._server_ctx.load_cert_chain(server.certfile, keyfile)
    server.start()
    try:
        yield server
    finally:
        server.stop()
