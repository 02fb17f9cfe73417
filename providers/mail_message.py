"""The mail of one notification, written as the bytes an SMTP server receives.

Why the message is written as bytes: building it as an :class:`email.message.EmailMessage` with the
default policy (:func:`build_message`) parses and refolds every header through the header registry
and was about half of a delivery worker's CPU: about 1.8 ms per mail with its flattening, against
about 0.02 ms for the same mail written directly. So :func:`message_bytes` writes the wire form
itself for the common case: an ASCII ``local@domain`` recipient, an ASCII subject and header values
that fit on one line and hold no encoded word, UTF-8 bodies as 7bit or quoted-printable. It makes
every check :func:`build_message` makes, with the same errors, and anything outside that case is
built by :func:`build_message` and flattened as ``smtplib.SMTP.send_message`` would, so the fast
path never has to fold, encode or parse a header the email package would treat differently. From
and Reply-To are rendered by the email package once per sender and reused. The SMTP provider, the
outbox (what ``make run`` writes is what SMTP would carry) and test mode all use
:func:`message_bytes`; :func:`build_message` stays as the reference the tests compare it with.
"""

from __future__ import annotations

import copy
import functools
import io
import re
import secrets
from datetime import UTC, datetime
from email import policy, quoprimime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from providers.errors import PermanentProviderError
from settings import parse_address

_FORBIDDEN_CHARS = re.compile(r"[\r\n\0]")
#: Header names a caller may not set through ``headers``: the builder owns them, and a second copy
#: of any of them changes who receives the message or how it is parsed.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "sender",
        "reply-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "return-path",
        "auto-submitted",
        "x-herald-notification-id",
    }
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ':'
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")

# The fast path of message_bytes: what it writes as given, because the email package would write
# and read it back unchanged. Anything else is left to build_message.
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_PLAIN_ADDRESS = re.compile(f"{_DOT_ATOM}@{_DOT_ATOM}")  # also a Message-ID without its brackets
_PLAIN_VALUE = re.compile(r"[!-~][ -~]*")  # printable ASCII, not starting with a space
#: Headers the email package parses as structured (addresses, dates, MIME): never on the fast path.
_STRUCTURED_HEADERS = frozenset(policy.default.header_factory.registry)
_MAX_LINE = 78  # RFC 5322's "SHOULD"; a longer header would have to be folded
_MAX_7BIT_LINE = 998  # RFC 5322's "MUST", in octets without the CRLF
_QP_WIDTH = 76  # RFC 2045
_FROM_LINE = re.compile(r"^From ", re.MULTILINE)


def parse_mail_from(value: str) -> Address:
    """``MAIL_FROM`` as an Address, so a bad value fails at start rather than on every message.

    Raises:
        ValueError: the value is not one address with a local part and a domain.
    """
    return parse_address(value, "MAIL_FROM")


def message_id_for(notification_id: str, mail_from: Address) -> str:
    """``<notification-id@sender-domain>``: the same across retries of one notification.

    Receivers and clients deduplicate on it, so a retry after an ambiguous failure (connection lost
    after DATA) does not show the user two copies. The right side is the domain of ``MAIL_FROM``,
    the one domain Herald may speak for: a bare word there is not a domain and spam filters score
    it.
    """
    return f"<{notification_id}@{mail_from.domain or 'herald.invalid'}>"


def _reject_breaks(what: str, value: str) -> None:
    # Stripping would silently send something other than what was asked; refusing makes the bad
    # input visible.
    if _FORBIDDEN_CHARS.search(value):
        raise PermanentProviderError(f"{what} contains a line break or NUL", reason="invalid_header")


def _checked(
    *, mail_from: Address, to: str, subject: str, notification_id: str, headers: dict[str, str] | None
) -> tuple[str, dict[str, str]]:
    """The checks made before any header is parsed, in :func:`build_message`'s order; returns the
    Message-ID and a copy of the extra headers."""
    _reject_breaks("subject", subject)
    _reject_breaks("recipient", to)
    _reject_breaks("notification id", notification_id)
    message_id = message_id_for(notification_id.strip(), mail_from)
    if not _MESSAGE_ID.fullmatch(message_id):
        raise PermanentProviderError(f"Message-ID {message_id!r} is not <id@domain>", reason="invalid_header")
    extra = dict(headers or {})
    for name, value in extra.items():
        if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
            raise PermanentProviderError(f"header name {name!r} is not allowed", reason="invalid_header")
        _reject_breaks(f"header {name}", value)
    return message_id, extra


def build_message(
    *,
    mail_from: Address,
    to: str,
    subject: str,
    html: str,
    text: str,
    notification_id: str,
    reply_to: Address | None = None,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The multipart/alternative message (text/plain, then text/html) with the headers receivers
    judge it by.

    ``Date``; ``From`` with its display name; ``Message-ID`` from :func:`message_id_for`;
    ``Reply-To`` when ``MAIL_REPLY_TO`` is set; ``Auto-Submitted: auto-generated``, which tells
    vacation responders and other robots not to answer, since nobody reads what comes
    back to a no-reply sender; and ``X-Herald-Notification-ID``, which ties a mail found in a
    mailbox to its notification. Non-ASCII subjects and names are written as RFC 2047 encoded
    words, so the header section stays 7-bit for any server.

    Raises:
        PermanentProviderError: ``invalid_header`` for CR/LF/NUL in the subject, recipient,
            notification id or a header, a notification id that cannot be a Message-ID's left side,
            a malformed or reserved header name; ``invalid_recipient`` for a recipient that is not
            exactly one address.
    """
    message_id, extra = _checked(
        mail_from=mail_from, to=to, subject=subject, notification_id=notification_id, headers=headers
    )
    msg = EmailMessage()
    msg["From"] = mail_from
    try:
        msg["To"] = to
        recipients = msg["To"].addresses
    except (ValueError, IndexError, TypeError) as exc:
        raise PermanentProviderError(f"recipient is not an address: {exc}", reason="invalid_recipient") from None
    if len(recipients) != 1 or not recipients[0].username or not recipients[0].domain:
        raise PermanentProviderError("recipient must be exactly one address user@domain", reason="invalid_recipient")
    msg["Subject"] = subject
    # The email package decodes RFC 2047 encoded words when a header is set; an encoded CR/LF would
    # then be written out raw on an unpatched CPython (CVE-2024-6923), so check the decoded value too.
    _reject_breaks("subject", str(msg["Subject"]))
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id
    if reply_to is not None:
        msg["Reply-To"] = reply_to
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Herald-Notification-ID"] = notification_id.strip()
    for name, value in extra.items():
        msg[name] = value
        # The same CVE-2024-6923 hole as the subject: an encoded CR/LF in a value would be written
        # out raw and start a header of its own.
        _reject_breaks(f"header {name}", str(msg.get_all(name)[-1]))
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def message_bytes(
    *,
    mail_from: Address,
    to: str,
    subject: str,
    html: str,
    text: str,
    notification_id: str,
    reply_to: Address | None = None,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> tuple[bytes, str]:
    """The mail :func:`build_message` describes, as the bytes SMTP carries, and its recipient.

    Returns the message with CRLF line endings, before SMTP's dot-stuffing (``smtplib`` adds it),
    and the recipient's addr-spec for ``RCPT TO``. Same headers, parts and decoded content as
    :func:`build_message`; the checks and errors are the same too, because they are its own, and
    anything outside the common case (see the module docstring) is its message, flattened.

    Raises:
        PermanentProviderError: as :func:`build_message`.
    """
    message_id, extra = _checked(
        mail_from=mail_from, to=to, subject=subject, notification_id=notification_id, headers=headers
    )
    nid = notification_id.strip()
    sender = sender_lines(mail_from, reply_to)
    if (
        sender is not None
        and _PLAIN_ADDRESS.fullmatch(to)
        and "=?" not in to
        and len(to) <= _MAX_LINE - len("To: ")
        and "=?" not in nid
        and _PLAIN_ADDRESS.fullmatch(message_id[1:-1])
        and len(message_id) <= _MAX_LINE - len("Message-ID: ")
        and _plain_header("X-Herald-Notification-ID", nid)
        and _plain_header("Subject", subject)
        and all(name.lower() not in _STRUCTURED_HEADERS and _plain_header(name, v) for name, v in extra.items())
    ):
        plain, rich = _text_part("plain", text), _text_part("html", html)
        if plain is not None and rich is not None:
            boundary = _boundary(plain, rich)
            from_line, reply_line = sender
            head = "".join(
                (
                    from_line,
                    f"To: {to}\r\nSubject: {subject}\r\nDate: {format_datetime(date or datetime.now(UTC))}\r\n",
                    f"Message-ID: {message_id}\r\n",
                    reply_line,
                    f"Auto-Submitted: auto-generated\r\nX-Herald-Notification-ID: {nid}\r\n",
                    *(f"{name}: {value}\r\n" for name, value in extra.items()),
                    f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n',
                )
            )
            delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
            # The CRLF before each delimiter belongs to it: the part's own last CRLF stays content.
            data = b"".join(
                (head.encode("ascii"), delimiter, plain, delimiter, rich, f"\r\n--{boundary}--\r\n".encode("ascii"))
            )
            return data, to
    msg = build_message(
        mail_from=mail_from,
        to=to,
        subject=subject,
        html=html,
        text=text,
        notification_id=notification_id,
        reply_to=reply_to,
        headers=headers,
        date=date,
    )
    rcpt = msg["To"].addresses[0].addr_spec
    return _flatten(msg, international=not (mail_from.addr_spec + rcpt).isascii()), rcpt


def _plain_header(name: str, value: str) -> bool:
    return _PLAIN_VALUE.fullmatch(value) is not None and "=?" not in value and len(name) + 2 + len(value) <= _MAX_LINE


def sender_lines(mail_from: Address, reply_to: Address | None) -> tuple[str, str] | None:
    """The From line and the Reply-To line (empty without one), rendered by the email package; None
    when the fast path cannot use them (an address that needs SMTPUTF8)."""
    from_line = _address_line("From", mail_from.display_name, mail_from.username, mail_from.domain)
    if reply_to is None:
        return None if from_line is None else (from_line, "")
    reply_line = _address_line("Reply-To", reply_to.display_name, reply_to.username, reply_to.domain)
    if from_line is None or reply_line is None:
        return None
    return from_line, reply_line


@functools.lru_cache(maxsize=64)
def _address_line(name: str, display_name: str, username: str, domain: str) -> str | None:
    """``Name: address CRLF`` exactly as :func:`build_message` flattened for SMTP writes it.

    Cached: a provider has one sender and at most one Reply-To, so each is rendered once.
    """
    address = Address(display_name=display_name, username=username, domain=domain)
    if not address.addr_spec.isascii():
        return None
    line = policy.SMTP.fold(name, policy.SMTP.header_factory(name, address))
    return line if line.isascii() else None


def _text_part(subtype: str, body: str) -> bytes | None:
    """One text part with its headers: 7bit when that is safe, else quoted-printable.

    Line ends are normalised as :func:`build_message` does (``\\r``, ``\\n``, ``\\r\\n``), and the
    body ends with CRLF. A line starting ``From `` goes quoted-printable with the ``F`` encoded,
    so no mailbox along the way turns it into ``>From``. None for a body that is not valid text
    (a lone surrogate): :func:`build_message` raises on it.
    """
    try:
        raw = body.encode("utf-8")
    except UnicodeEncodeError:
        return None
    lines = raw.splitlines()
    data = b"\r\n".join(lines) + b"\r\n"
    if (
        raw.isascii()
        and max(map(len, lines), default=0) <= _MAX_7BIT_LINE
        and not data.startswith(b"From ")
        and b"\nFrom " not in data
    ):
        cte = "7bit"
    else:
        cte = "quoted-printable"
        latin = (b"\n".join(lines) + b"\n").decode("latin-1")
        encoded = quoprimime.body_encode(latin, _QP_WIDTH, "\r\n")
        if _FROM_LINE.search(encoded):
            # "=46" is two characters longer than "F": keep the lines within the width.
            encoded = _FROM_LINE.sub("=46rom ", quoprimime.body_encode(latin, _QP_WIDTH - 2, "\r\n"))
        data = encoded.encode("ascii")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    return head.encode("ascii") + data


def _boundary(*parts: bytes) -> str:
    """A random boundary that occurs in neither encoded part."""
    while True:
        boundary = f"=_{secrets.token_hex(12)}"
        marker = boundary.encode("ascii")
        if not any(marker in part for part in parts):
            return boundary


def _flatten(msg: EmailMessage, *, international: bool) -> bytes:
    """``msg`` as ``smtplib.SMTP.send_message`` puts it on the wire, but without turning a body line
    ``From `` into ``>From``: Bcc and Resent-Bcc left out, CRLF line ends, UTF-8 headers only when
    the envelope needs SMTPUTF8."""
    if len(msg.get_all("Resent-Date", ())) > 1:
        raise PermanentProviderError("more than one Resent- header block", reason="invalid_header")
    msg = copy.copy(msg)
    del msg["Bcc"]
    del msg["Resent-Bcc"]
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=msg.policy.clone(utf8=international)).flatten(msg, linesep="\r\n")
    return out.getvalue()
