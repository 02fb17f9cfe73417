"""message_bytes against build_message: the same mail and the same refusals, fast path or not."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.generator import BytesGenerator
from email.message import EmailMessage

import pytest

import providers.mail_message as email_module
from providers.email import SmtpEmailProvider
from providers.errors import PermanentProviderError
from providers.mail_message import build_message, message_bytes, parse_mail_from
from settings import Settings
from tests.support.smtp_server import smtp_server

DATE = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
BASE = {
    "mail_from": parse_mail_from("Herald Notifications <no-reply@herald.test>"),
    "to": "ada@example.com",
    "subject": "Welcome Ada",
    "html": "<p>Hello Ada, see <a href='https://example.com'>https://example.com</a></p>",
    "text": "Hello Ada, see https://example.com",
    "notification_id": "0b7e5c1e-3f7d-4c2a-9d1e-5a6b7c8d9e0f",
    "date": DATE,
}
LONG_LINE = "x" * 1200
TRICKY_TEXT = ".\n.hidden line\nFrom the team\n..two dots\nFrom: not a header\nend"

#: id -> (overrides of BASE, whether message_bytes writes it itself)
CASES = {
    "ascii": ({}, True),
    "named-from": ({"mail_from": parse_mail_from("Héraut Notifications <no-reply@mail.acme.example>")}, True),
    "reply-to": ({"reply_to": parse_mail_from("Support <support@acme.example>")}, True),
    "non-ascii-reply-to": ({"reply_to": parse_mail_from("Équipe Support <support@acme.example>")}, True),
    "extra-headers": ({"headers": {"X-Campaign": "spring-2024", "List-Id": "<news.acme.example>"}}, True),
    "plain-address-characters": ({"to": "o'brien+tag.x{1}@mail.example.co.uk"}, True),
    "non-ascii-body": ({"text": "Bonjour Zoë — ça marche ✓", "html": "<p>Zoë</p>"}, True),
    "long-line": ({"text": f"start\n{LONG_LINE}\nend", "html": f"<p>{LONG_LINE}</p>"}, True),
    "long-non-ascii-line": ({"text": "é" * 700}, True),
    "dots-and-from-lines": ({"text": TRICKY_TEXT, "html": "From here\n.<p>x</p>"}, True),
    "line-ends": ({"text": "a\r\nb\rc\n\nd\r\n", "html": "<p>\r\n</p>"}, True),
    "trailing-spaces": ({"text": "spaces   \ntab\t\nFrom  \n"}, True),
    "empty-bodies": ({"text": "", "html": ""}, True),
    "78-char-subject": ({"subject": "s" * 69}, True),
    "display-name-recipient": ({"to": "Ada Lovelace <ada@example.com>"}, False),
    "non-ascii-recipient-name": ({"to": "Zoë <zoe@example.com>"}, False),
    "quoted-local-part": ({"to": '"ada lovelace"@example.com'}, False),
    "recipient-with-spaces": ({"to": " ada@example.com "}, False),
    "non-ascii-subject": ({"subject": "Bienvenue Zoë — ça marche"}, False),
    "encoded-word-subject": ({"subject": "=?utf-8?q?Zo=C3=AB?="}, False),
    "79-char-subject": ({"subject": "s" * 70}, False),
    "long-subject": ({"subject": " ".join(["notification"] * 12)}, False),
    "tab-in-subject": ({"subject": "a\tb"}, False),
    "empty-subject": ({"subject": ""}, False),
    "non-ascii-header": ({"headers": {"X-Campaign": "Zoë"}}, False),
    "encoded-word-header": ({"headers": {"X-Campaign": "=?utf-8?q?Zo=C3=AB?="}}, False),
    "structured-header": ({"headers": {"Resent-From": "ops@acme.example"}}, False),
    "long-header": ({"headers": {"X-Campaign": "c" * 80}}, False),
    "long-notification-id": ({"notification_id": "n" * 60}, False),
    "unusual-notification-id": ({"notification_id": "a(b)"}, False),
}


def reference(**overrides) -> EmailMessage:
    return build_message(**{**BASE, **overrides})


def fast(**overrides) -> tuple[bytes, str]:
    return message_bytes(**{**BASE, **overrides})


def parts(msg: EmailMessage) -> list[tuple[str, str | None, str]]:
    return [
        (p.get_content_type(), p.get_content_charset(), p.get_content().replace("\r\n", "\n")) for p in msg.iter_parts()
    ]


def sent_before(ref: EmailMessage) -> EmailMessage:
    """``ref`` as receivers got it from ``smtplib.SMTP.send_message``: the email package folds a
    long header, and reading the fold back can add a leading space."""
    out = io.BytesIO()
    BytesGenerator(out).flatten(ref, linesep="\r\n")
    return message_from_bytes(out.getvalue(), policy=policy.default)


def assert_same_mail(data: bytes, ref: EmailMessage) -> EmailMessage:
    """What a receiver parses from ``data`` is ``ref``: every header's decoded value as it arrived
    before, each part's type, charset and decoded content."""
    got, before = message_from_bytes(data, policy=policy.default), sent_before(ref)
    assert sorted(k.lower() for k in got) == sorted(k.lower() for k in ref)
    for name in {k.lower() for k in ref} - {"content-type"}:
        assert [str(v) for v in got.get_all(name)] == [str(v) for v in before.get_all(name)], name
    assert got.get_content_type() == ref.get_content_type() == "multipart/alternative"
    assert parts(got) == parts(ref)
    assert got.defects == [] and all(p.defects == [] for p in got.walk())
    return got


def assert_wire_form(data: bytes) -> None:
    """CRLF everywhere, a 7-bit header section, no line over 998 octets."""
    assert data.endswith(b"\r\n")
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", data) is None
    assert max(map(len, data.split(b"\r\n"))) <= 998
    data.split(b"\r\n\r\n", 1)[0].decode("ascii")


@pytest.mark.parametrize("overrides, written_directly", CASES.values(), ids=CASES.keys())
def test_the_bytes_parse_to_the_reference_message(monkeypatch, overrides, written_directly):
    calls = []
    monkeypatch.setattr(email_module, "build_message", lambda **kw: calls.append(kw) or build_message(**kw))
    data, rcpt = fast(**overrides)
    assert (calls == []) is written_directly
    ref = reference(**overrides)
    assert rcpt == ref["To"].addresses[0].addr_spec
    assert_wire_form(data)
    assert_same_mail(data, ref)


def test_the_fast_path_writes_the_header_lines_the_email_package_writes():
    """Beyond the decoded values: the same lines, byte for byte, up to the MIME headers."""
    overrides = {"reply_to": parse_mail_from("Équipe <support@acme.example>"), "headers": {"X-A": "b  c "}}
    data, _ = fast(**overrides)
    with_generator, _ = message_bytes(**{**BASE, **overrides, "to": "Ada <ada@example.com>"})
    head = data.split(b"\r\nMIME-Version:", 1)[0]
    expected = with_generator.split(b"\r\nMIME-Version:", 1)[0].replace(
        b"To: Ada <ada@example.com>", b"To: ada@example.com"
    )
    assert head == expected


def test_a_body_line_from_or_dot_survives_7bit_and_quoted_printable():
    data, _ = fast(text=TRICKY_TEXT, html="<p>plain</p>")
    text_part = data.split(b"Content-Type: text/plain", 1)[1].split(b"\r\n--", 1)[0]
    assert b"quoted-printable" in text_part and b"\r\n=46rom the team\r\n" in text_part
    assert not re.search(rb"(?m)^>?From ", data.split(b"\r\n\r\n", 1)[1])
    got = message_from_bytes(data, policy=policy.default)
    assert got.get_body(("plain",)).get_content().replace("\r\n", "\n") == TRICKY_TEXT + "\n"
    assert b"Content-Transfer-Encoding: 7bit" in data.split(b"Content-Type: text/html", 1)[1]


def test_quoted_printable_lines_stay_within_76_characters():
    data, _ = fast(text=("From " + "é" * 100 + "\n") * 3, html="<p>" + "x" * 500 + "é</p>")
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(map(len, body.split(b"\r\n"))) <= 76


def test_the_boundary_is_drawn_again_when_a_body_contains_it(monkeypatch):
    draws = iter(["a" * 24, "b" * 24])
    monkeypatch.setattr(email_module.secrets, "token_hex", lambda n: next(draws))
    text = f"--=_{'a' * 24}\nnot a part\n--=_{'a' * 24}--"
    data, _ = fast(text=text)
    got = assert_same_mail(data, reference(text=text))
    assert got.get_boundary() == "=_" + "b" * 24


def test_a_non_ascii_recipient_is_flattened_for_smtputf8():
    data, rcpt = fast(to="zoë@example.com")
    assert rcpt == "zoë@example.com"
    assert b"To: zo\xc3\xab@example.com\r\n" in data
    assert_same_mail(data, reference(to="zoë@example.com"))


def test_resent_bcc_is_left_out_like_send_message_did():
    data, _ = fast(headers={"Resent-Bcc": "audit@acme.example", "Resent-Date": "Mon, 06 May 2024 07:08:09 +0000"})
    got = message_from_bytes(data, policy=policy.default)
    assert got["Resent-Bcc"] is None and got["Resent-Date"] is not None
    with pytest.raises(PermanentProviderError) as info:
        fast(
            headers={"Resent-Date": "Mon, 06 May 2024 07:08:09 +0000", "resent-date": "Tue, 07 May 2024 07:08:09 +0000"}
        )
    assert info.value.reason == "invalid_header"


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"subject": "Hello\r\nBcc: victim@example.com"}, "invalid_header"),
        ({"subject": "Hello\nX-Injected: 1"}, "invalid_header"),
        ({"subject": "Hello\0"}, "invalid_header"),
        ({"subject": "=?utf-8?q?Hello=0D=0ABcc:_victim@example.com?="}, "invalid_header"),
        ({"subject": "=?utf-8?q?Hello=00?="}, "invalid_header"),
        ({"to": "ada@example.com\r\nBcc: victim@example.com"}, "invalid_header"),
        ({"to": "ada@example.com\0"}, "invalid_header"),
        ({"headers": {"X-Campaign": "n-1\r\nBcc: victim@example.com"}}, "invalid_header"),
        ({"headers": {"X-Campaign": "=?utf-8?q?n-1=0D=0ABcc:_victim@example.com?="}}, "invalid_header"),
        ({"headers": {"X-Ok": "1", "x-ok": "=?utf-8?q?n-1=0ABcc:_victim@example.com?="}}, "invalid_header"),
        ({"headers": {"Bcc": "victim@example.com"}}, "invalid_header"),
        ({"headers": {"bcc": "victim@example.com"}}, "invalid_header"),
        ({"headers": {"X-Bad Name": "x"}}, "invalid_header"),
        ({"headers": {"X-Bad:Name": "x"}}, "invalid_header"),
        ({"headers": {"": "x"}}, "invalid_header"),
        ({"headers": {"X-Zoë": "x"}}, "invalid_header"),
        ({"headers": {"Auto-Submitted": "no"}}, "invalid_header"),
        ({"headers": {"Content-Type": "text/plain"}}, "invalid_header"),
        ({"headers": {"X-Herald-Notification-ID": "someone-else"}}, "invalid_header"),
        ({"notification_id": "n-1\r\nBcc: victim@example.com"}, "invalid_header"),
        ({"notification_id": "n-1>\tBcc: victim@example.com"}, "invalid_header"),
        ({"notification_id": "n@1"}, "invalid_header"),
        ({"notification_id": "n 1"}, "invalid_header"),
        ({"notification_id": ""}, "invalid_header"),
        ({"to": "not-an-address"}, "invalid_recipient"),
        ({"to": "a@example.com, b@example.com"}, "invalid_recipient"),
        ({"to": ""}, "invalid_recipient"),
        ({"to": "ada@"}, "invalid_recipient"),
        ({"to": "@example.com"}, "invalid_recipient"),
        ({"to": "Ada <ada>"}, "invalid_recipient"),
        ({"to": "=?utf-8?q?a=0D=0AX:_y?= <ada@example.com>"}, "invalid_recipient"),
        ({"to": "undisclosed-recipients:;"}, "invalid_recipient"),
    ],
)
def test_every_refusal_of_build_message_is_made_with_the_same_reason(overrides, reason):
    with pytest.raises(PermanentProviderError) as expected:
        reference(**overrides)
    with pytest.raises(PermanentProviderError) as got:
        fast(**overrides)
    assert expected.value.reason == got.value.reason == reason
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("field", ["text", "html"])
def test_a_body_that_is_not_valid_text_fails_as_in_build_message(field):
    with pytest.raises(UnicodeEncodeError):
        reference(**{field: "lone \ud800 surrogate"})
    with pytest.raises(UnicodeEncodeError):
        fast(**{field: "lone \ud800 surrogate"})


@pytest.mark.parametrize("case", ["ascii", "dots-and-from-lines", "non-ascii-body", "long-line", "non-ascii-subject"])
def test_what_the_smtp_server_receives_parses_to_the_reference_message(case):
    overrides, _ = CASES[case]
    with smtp_server() as smtp:
        settings = Settings.from_env(
            {
                "JWT_SECRET": "test-secret-for-herald-0123456789",
                "MAIL_FROM": "Herald Notifications <no-reply@herald.test>",
                "MAIL_REPLY_TO": "Équipe Support <support@herald.test>",
                "SMTP_TIMEOUT_S": "5",
                **smtp.env,
            }
        )
        provider = SmtpEmailProvider(settings=settings)
        mail = {k: v for k, v in {**BASE, **overrides}.items() if k not in ("mail_from", "date")}
        provider.send(**mail)
        provider.close()
        [received] = smtp.wait_for(1)
    ref = build_message(
        **mail,
        mail_from=parse_mail_from(settings.mail_from),
        reply_to=parse_mail_from(settings.mail_reply_to),
        date=received.message["Date"].datetime,
    )
    assert_same_mail(received.data, ref)
    assert received.mail_from == "no-reply@herald.test" and received.rcpt_tos == ["ada@example.com"]
    assert abs((datetime.now(UTC) - received.message["Date"].datetime).total_seconds()) < 60


def test_a_non_ascii_recipient_goes_with_smtputf8_as_before():
    with smtp_server() as smtp:
        env = {"JWT_SECRET": "test-secret-for-herald-0123456789", "MAIL_FROM": "no-reply@herald.test", **smtp.env}
        provider = SmtpEmailProvider(settings=Settings.from_env(env))
        mail = {k: v for k, v in BASE.items() if k not in ("mail_from", "date")}
        provider.send(**{**mail, "to": "Zoë <zoë@example.com>"})
        [received] = smtp.wait_for(1)
        provider.close()
    assert received.rcpt_tos == ["zoë@example.com"]
    ref = build_message(
        **{**mail, "to": "Zoë <zoë@example.com>"},
        mail_from=parse_mail_from("no-reply@herald.test"),
        date=received.message["Date"].datetime,
    )
    assert_same_mail(received.data, ref)
