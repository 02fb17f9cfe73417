"""E-mail over SMTP: the message is written by :mod:`providers.mail_message`, yagmail only carries
the connection.

yagmail 0.16 cannot produce a real text/plain alternative, derives its own Message-ID from
From+To+Subject, opens a new connection on every ``send()`` and swallows disconnects after blocking
retries. So the message is built by Herald, and yagmail is used for connect, STARTTLS/SSL and login
only. Each worker thread keeps one logged-in connection and reuses it, because a connect + TLS +
AUTH per message costs more than the message itself.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import ssl
import threading
from base64 import b64encode

import yagmail

from providers.errors import PermanentProviderError, ProviderError, RetryableProviderError
from providers.mail_message import message_bytes, parse_mail_from, sender_lines
from settings import parse_address

log = logging.getLogger(__name__)


class SmtpEmailProvider:
    """Sends through ``SMTP_HOST`` with one reused connection per thread.

    yagmail and smtplib are not thread-safe, hence the thread-local client. A connection that went
    stale while idle (server timeout, restart, 421) is detected on the next message, which is sent
    again once on a fresh connection. A timeout is never resent on its own: the server may have
    accepted the DATA, and the retry policy upstream decides.
    """

    def __init__(self, *, settings) -> None:
        if not settings.smtp_host:
            raise ValueError("SMTP_HOST: required for the SMTP provider")
        self._settings = settings
        self._from = parse_mail_from(settings.mail_from)
        self._reply_to = parse_address(settings.mail_reply_to, "MAIL_REPLY_TO") if settings.mail_reply_to else None
        self._local = threading.local()
        self._secrets = _secret_forms(settings.smtp_password)
        sender_lines(self._from, self._reply_to)  # rendered now, reused by every message

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
        """Deliver the mail of one notification to the SMTP server.

        The Message-ID is made here from ``notification_id`` and the sender's domain, so every
        retry of a notification carries the same one (see :func:`message_bytes`).

        Raises:
            RetryableProviderError: 4xx replies, timeouts, an unreachable server, failed login.
            PermanentProviderError: 5xx replies, a header injection attempt, a malformed recipient.
        """
        data, rcpt = message_bytes(
            mail_from=self._from,
            reply_to=self._reply_to,
            to=to,
            subject=subject,
            html=html,
            text=text,
            notification_id=notification_id,
            headers=headers,
        )
        sender = self._from.addr_spec
        # As send_message: an address beyond ASCII needs the server's SMTPUTF8 (smtplib checks it).
        options = () if (sender + rcpt).isascii() else ("SMTPUTF8", "BODY=8BITMIME")
        for attempt in (1, 2):
            client, reused = self._client()
            try:
                refused = client.smtp.sendmail(sender, [rcpt], data, options)
            except Exception as exc:
                if _connection_lost(exc):
                    self._discard()
                    if reused and attempt == 1 and not _timed_out(exc):
                        log.info("SMTP connection went stale, reconnecting once", extra={"error": str(exc)})
                        continue
                elif not isinstance(exc, smtplib.SMTPResponseException):
                    self._discard()
                raise self._classify(exc) from exc
            if refused:
                raise self._refused(refused)
            return
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """QUIT this thread's connection (worker thread shutdown)."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with contextlib.suppress(OSError):  # smtplib errors are OSErrors; a failed QUIT changes nothing
                client.close()

    def _client(self) -> tuple[yagmail.SMTP, bool]:
        client = getattr(self._local, "client", None)
        if client is not None and client.smtp is not None and client.smtp.sock is not None:
            return client, True
        client = self._new_client()
        try:
            client.login()
        except Exception as exc:
            _abandon(client)
            raise self._classify(exc) from exc
        self._local.client = client
        return client, False

    def _new_client(self) -> yagmail.SMTP:
        s = self._settings
        kwargs: dict = {"timeout": s.smtp_timeout_s}
        starttls: bool | dict = False
        if s.smtp_ssl:
            kwargs["context"] = ssl.create_default_context()
        elif s.smtp_starttls:
            # smtplib's default context does not verify the certificate; this one does.
            starttls = {"context": ssl.create_default_context()}
        login = s.smtp_username or self._from.addr_spec
        # A one-item dict is taken verbatim as the login name; a plain string without '@' would get
        # '@gmail.com' appended. Validation is off because API keys ("apikey") are valid logins.
        client = yagmail.SMTP(
            user={login: login},
            password=s.smtp_password or "",
            host=s.smtp_host,
            port=s.smtp_port,
            smtp_ssl=s.smtp_ssl,
            smtp_starttls=starttls,
            smtp_skip_login=not s.smtp_username,
            soft_email_validation=False,
            **kwargs,
        )
        client.set_logging(None)  # yagmail would add its own stderr handler; ours go through logs.py
        return client

    def _discard(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            _abandon(client)

    def _classify(self, exc: BaseException) -> ProviderError:
        clean = self._scrub
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            # A configuration problem: an operator fixes the credentials, the message must wait.
            return RetryableProviderError(
                f"SMTP login refused: {exc.smtp_code} {clean(exc.smtp_error)}", reason="smtp_auth"
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return self._refused(exc.recipients)
        if isinstance(exc, smtplib.SMTPConnectError):
            return RetryableProviderError(
                f"SMTP server refused the connection: {exc.smtp_code} {clean(exc.smtp_error)}",
                reason="smtp_unreachable",
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            return _by_code(exc.smtp_code, f"SMTP server answered {exc.smtp_code} {clean(exc.smtp_error)}")
        if _timed_out(exc):
            return RetryableProviderError(
                f"SMTP server did not answer within {self._settings.smtp_timeout_s} s", reason="smtp_timeout"
            )
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return RetryableProviderError(f"TLS with the SMTP server failed: {clean(exc)}", reason="smtp_tls")
        if isinstance(exc, smtplib.SMTPException) and not isinstance(exc, smtplib.SMTPServerDisconnected):
            # e.g. no AUTH or STARTTLS offered, no usable AUTH mechanism: the operator must act.
            return RetryableProviderError(f"SMTP session not possible: {clean(exc)}", reason="smtp_config")
        if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
            return RetryableProviderError(
                f"SMTP server {self._settings.smtp_host}:{self._settings.smtp_port} unreachable: {clean(exc)}",
                reason="smtp_unreachable",
            )
        return RetryableProviderError(f"SMTP send failed: {type(exc).__name__}: {clean(exc)}", reason="smtp_error")

    def _refused(self, recipients: dict) -> ProviderError:
        codes = [code for code, _ in recipients.values()]
        detail = "; ".join(f"{addr}: {code} {self._scrub(resp)}" for addr, (code, resp) in recipients.items())
        # Any temporary refusal means a later attempt can still reach that recipient.
        code = next((c for c in codes if 400 <= c < 500), codes[0] if codes else 451)
        return _by_code(code, f"recipient refused: {detail}")

    def _scrub(self, value: object) -> str:
        """Server text as a str without the password in any form smtplib may have sent it."""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        text = str(value)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _by_code(code: int, message: str) -> ProviderError:
    if 400 <= code < 500:
        return RetryableProviderError(message, reason="smtp_4xx")
    if 500 <= code < 600:
        return PermanentProviderError(message, reason="smtp_5xx")
    return RetryableProviderError(message, reason="smtp_error")


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421:
        return True  # "closing channel": smtplib has already closed the socket
    # SMTPException subclasses OSError, but a refusal leaves the session usable (smtplib sent RSET).
    return isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)


def _timed_out(exc: BaseException | None) -> bool:
    # smtplib turns a read timeout into SMTPServerDisconnected; the timeout is still in the chain.
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, TimeoutError | socket.timeout):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _abandon(client: yagmail.SMTP) -> None:
    """Close the socket without QUIT: the connection is already broken or unwanted."""
    client.is_closed = True  # keeps yagmail's __del__ from sending QUIT on a dead socket
    if client.smtp is not None:
        with contextlib.suppress(OSError):
            client.smtp.close()


def _secret_forms(password: str | None) -> list[str]:
    if not password:
        return []
    # AUTH PLAIN/LOGIN carry it base64-encoded; a server echoing the exchange must not leak it either.
    return [password, b64encode(password.encode("utf-8", "surrogatepass")).decode()]
