"""SmtpEmailProvider against a real aiosmtpd server over TCP: no smtplib mocks."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from providers.email import SmtpEmailProvider
from providers.errors import PermanentProviderError, RetryableProviderError
from providers.mail_message import build_message, parse_mail_from
from providers.rendering import Renderer
from settings import Settings
from tests.support.smtp_server import free_port, smtp_server

MAIL_FROM = "Herald Notifications <no-reply@herald.test>"
PASSWORD = "s3cret-Pa55word!"


def make_settings(**env: str) -> Settings:
    return Settings.from_env(
        {"JWT_SECRET": "test-secret-for-herald-0123456789", "MAIL_FROM": MAIL_FROM, "SMTP_TIMEOUT_S": "5", **env}
    )


def send(provider: SmtpEmailProvider, n: int = 0, **overrides) -> None:
    args = {
        "to": "ada@example.com",
        "subject": f"Welcome Ada #{n}",
        "html": f"<h1>Hi Ada</h1><p>#{n}</p>",
        "text": f"Hi Ada\n#{n}",
        "notification_id": f"note-{n}",
    }
    args.update(overrides)
    provider.send(**args)


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture
def provider(smtp):
    p = SmtpEmailProvider(settings=make_settings(**smtp.env))
    yield p
    p.close()


def test_email_arrives_as_multipart_alternative_with_headers(smtp, provider):
    provider.send(
        to="Ada Lovelace <ada@example.com>",
        subject="Bienvenue, Ada — ça marche",
        html="<h1>Hi Ada</h1>",
        text="Hi Ada",
        notification_id="n-1",
        headers={"X-Campaign": "spring"},
    )
    [mail] = smtp.wait_for(1)
    msg = mail.message
    assert mail.mail_from == "no-reply@herald.test"
    assert mail.rcpt_tos == ["ada@example.com"]
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("plain",)).get_content().strip() == "Hi Ada"
    assert msg.get_body(("html",)).get_content().strip() == "<h1>Hi Ada</h1>"
    assert msg["Subject"] == "Bienvenue, Ada — ça marche"
    assert msg["From"] == MAIL_FROM
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["Message-ID"] == "<n-1@herald.test>"
    assert msg["X-Herald-Notification-ID"] == "n-1"
    assert msg["X-Campaign"] == "spring"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Reply-To"] is None  # only when MAIL_REPLY_TO is set
    assert msg["Date"].datetime is not None


def test_headers_receivers_judge_a_mail_by(smtp):
    """Message-ID on the sender's domain, Date, a named From, Reply-To, Auto-Submitted, and UTF-8
    subject and names as encoded words in a header section that stays 7-bit."""
    env = {
        **smtp.env,
        "MAIL_FROM": "Héraut Notifications <no-reply@mail.acme.example>",
        "MAIL_REPLY_TO": "Équipe Support <support@acme.example>",
    }
    provider = SmtpEmailProvider(settings=make_settings(**env))
    nid = "0b7e5c1e-3f7d-4c2a-9d1e-5a6b7c8d9e0f"
    provider.send(
        to="Ådå Lövelace <ada@example.com>",
        subject="Bienvenue, Ada — ça marche",
        html="<p>Hi</p>",
        text="Hi",
        notification_id=nid,
    )
    provider.close()
    [mail] = smtp.wait_for(1)
    msg = mail.message
    assert msg["Message-ID"] == f"<{nid}@mail.acme.example>"
    assert msg["X-Herald-Notification-ID"] == nid
    assert msg["Auto-Submitted"] == "auto-generated"
    [sender], [reply_to], [to] = msg["From"].addresses, msg["Reply-To"].addresses, msg["To"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Héraut Notifications", "no-reply@mail.acme.example")
    assert (reply_to.display_name, reply_to.addr_spec) == ("Équipe Support", "support@acme.example")
    assert (to.display_name, to.addr_spec) == ("Ådå Lövelace", "ada@example.com")
    assert msg["Subject"] == "Bienvenue, Ada — ça marche"
    assert abs((datetime.now(UTC) - msg["Date"].datetime).total_seconds()) < 60
    head = re.split(rb"\r?\n\r?\n", mail.data, maxsplit=1)[0]
    head.decode("ascii")  # 7-bit: non-ASCII only as encoded words
    assert head.count(b"=?utf-8?") >= 4  # subject, From, Reply-To and To names
    names = [k.lower() for k in msg]
    for name in ("from", "to", "subject", "date", "message-id", "reply-to", "auto-submitted", "mime-version"):
        assert names.count(name) == 1, (name, names)


def test_the_text_part_of_a_mail_with_a_link_carries_the_url(smtp, provider):
    link = "https://acme.example/verify?token=7f3a&u=42"
    content = '<p>Hi {{ name }},</p><p>Please <a href="{{ link }}">verify your address</a>.</p>'
    rendered = Renderer().render(subject="Verify", content=content, variables={"name": "Ada", "link": link})
    provider.send(
        to="ada@example.com",
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        notification_id="n-link",
    )
    [mail] = smtp.wait_for(1)
    text = mail.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.strip() == f"Hi Ada,\n\nPlease verify your address ({link})."


def test_one_connection_serves_many_messages(smtp, provider):
    for n in range(5):
        send(provider, n)
    assert len(smtp.wait_for(5)) == 5
    assert smtp.connections == 1
    assert [m.message["Message-ID"] for m in smtp.messages] == [f"<note-{n}@herald.test>" for n in range(5)]


def test_each_thread_has_its_own_connection(smtp, provider):
    errors: list[BaseException] = []

    def worker(base: int) -> None:
        try:
            for n in range(3):
                send(provider, base + n)
        except BaseException as exc:
            errors.append(exc)
        finally:
            provider.close()

    threads = [threading.Thread(target=worker, args=(i * 10,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(smtp.wait_for(9)) == 9
    assert smtp.connections == 3


def test_reconnects_when_the_server_dropped_the_idle_connection(smtp, provider):
    send(provider, 1)
    smtp.drop_connections()
    time.sleep(0.1)
    send(provider, 2)
    assert [m.message["Subject"] for m in smtp.wait_for(2)] == ["Welcome Ada #1", "Welcome Ada #2"]
    assert smtp.connections == 2


def test_reconnects_after_the_server_restarted(smtp, provider):
    send(provider, 1)
    smtp.restart()
    send(provider, 2)
    assert len(smtp.wait_for(2)) == 2


def test_421_on_a_reused_connection_reconnects_and_resends_once(smtp, provider):
    send(provider, 1)
    smtp.fail_with(421, stage="mail", times=1)
    send(provider, 2)
    assert len(smtp.wait_for(2)) == 2
    assert smtp.connections == 2


def test_451_is_retryable_and_the_connection_stays_usable(smtp, provider):
    smtp.fail_with(451)
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "smtp_4xx" and "451" in str(info.value)
    smtp.clear_failure()
    send(provider, 2)
    assert len(smtp.wait_for(1)) == 1
    assert smtp.connections == 1


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_550_is_permanent(smtp, provider, stage):
    smtp.fail_with(550, stage=stage)
    with pytest.raises(PermanentProviderError) as info:
        send(provider)
    assert info.value.reason == "smtp_5xx" and "550" in str(info.value)
    assert smtp.messages == []


def test_temporary_recipient_refusal_is_retryable(smtp, provider):
    smtp.fail_with(450, stage="rcpt")
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "smtp_4xx"


def test_connection_refused_is_retryable_and_quick():
    provider = SmtpEmailProvider(settings=make_settings(SMTP_HOST="127.0.0.1", SMTP_PORT=str(free_port())))
    started = time.monotonic()
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "smtp_unreachable"
    assert time.monotonic() - started < 2


def test_a_server_that_never_answers_times_out_within_the_setting():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)  # accepts TCP but never sends the greeting
        port = silent.getsockname()[1]
        provider = SmtpEmailProvider(
            settings=make_settings(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_TIMEOUT_S="1")
        )
        started = time.monotonic()
        with pytest.raises(RetryableProviderError) as info:
            send(provider)
    assert info.value.reason == "smtp_timeout"
    assert time.monotonic() - started < 5


def test_server_gone_after_a_successful_send_is_retryable(smtp, provider):
    send(provider, 1)
    smtp.stop()
    with pytest.raises(RetryableProviderError) as info:
        send(provider, 2)
    assert info.value.reason == "smtp_unreachable"


@pytest.mark.parametrize(
    "field, value",
    [
        ("subject", "Hello\r\nBcc: victim@example.com"),
        ("subject", "Hello\nX-Injected: 1"),
        ("subject", "Hello\0"),
        ("to", "ada@example.com\r\nBcc: victim@example.com"),
        ("headers", {"X-Campaign": "n-1\r\nBcc: victim@example.com"}),
        ("headers", {"X-Campaign": "=?utf-8?q?n-1=0D=0ABcc:_victim@example.com?="}),
        ("headers", {"Bcc": "victim@example.com"}),
        ("headers", {"X-Bad Name": "x"}),
        ("headers", {"Auto-Submitted": "no"}),
        ("headers", {"X-Herald-Notification-ID": "someone-else"}),
        ("notification_id", "n-1\r\nBcc: victim@example.com"),
        ("notification_id", "n-1>\tBcc: victim@example.com"),
        ("notification_id", "n@1"),
    ],
)
def test_header_injection_is_refused_not_stripped(smtp, provider, field, value):
    with pytest.raises(PermanentProviderError) as info:
        send(provider, **{field: value})
    assert info.value.reason == "invalid_header"
    assert smtp.messages == [] and smtp.connections == 0


@pytest.mark.parametrize("to", ["not-an-address", "a@example.com, b@example.com", ""])
def test_malformed_recipient_is_permanent(provider, to):
    with pytest.raises(PermanentProviderError) as info:
        send(provider, to=to)
    assert info.value.reason == "invalid_recipient"


def test_wrong_password_is_retryable_and_never_shown():
    with smtp_server(auth=("herald", "the-right-one")) as smtp:
        env = {**smtp.env, "SMTP_PASSWORD": PASSWORD}
        provider = SmtpEmailProvider(settings=make_settings(**env))
        with pytest.raises(RetryableProviderError) as info:
            send(provider)
    err = info.value
    assert err.reason == "smtp_auth"
    texts = [str(err), repr(err), str(err.args)]
    cause = err.__cause__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    for text in texts:
        assert PASSWORD not in text
        assert "czNjcmV0LVBhNTV3b3JkIQ" not in text  # base64 of the password


def test_login_uses_the_username_verbatim_and_from_stays_mail_from():
    with smtp_server(auth=("herald", PASSWORD)) as smtp:
        provider = SmtpEmailProvider(settings=make_settings(**smtp.env))
        send(provider)
        send(provider, 2)
        [mail, _] = smtp.wait_for(2)
        provider.close()
    assert smtp.logins == ["herald"]  # not "herald@gmail.com", and only one login for two messages
    assert mail.message["From"] == MAIL_FROM
    assert mail.mail_from == "no-reply@herald.test"


def test_build_message_puts_the_notification_id_on_the_senders_domain():
    msg = build_message(
        mail_from=parse_mail_from(MAIL_FROM),
        to="ada@example.com",
        subject="S",
        html="<p>x</p>",
        text="x",
        notification_id="1234-abcd",
    )
    assert msg["Message-ID"] == "<1234-abcd@herald.test>"
    assert msg["X-Herald-Notification-ID"] == "1234-abcd"
    assert msg.get_content_type() == "multipart/alternative"


@pytest.mark.parametrize("value", ["nobody", "Herald <no-reply>", "a@b\r\nBcc: x@y"])
def test_a_bad_mail_from_fails_at_construction(value):
    with pytest.raises(ValueError, match="MAIL_FROM"):
        SmtpEmailProvider(settings=make_settings(SMTP_HOST="127.0.0.1", MAIL_FROM=value))


@pytest.mark.parametrize("value", ["support", "Support <support>", "a@b\r\nBcc: x@y"])
def test_a_bad_mail_reply_to_fails_at_construction(value):
    with pytest.raises(ValueError, match=r"^MAIL_REPLY_TO: "):
        SmtpEmailProvider(settings=make_settings(SMTP_HOST="127.0.0.1", MAIL_REPLY_TO=value))


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_tls_certificate_is_verified(tmp_path, tls):
    """smtplib's default would accept any certificate; an untrusted one must fail, retryably."""
    with smtp_server(tls=tls, cert_dir=tmp_path) as smtp:
        provider = SmtpEmailProvider(settings=make_settings(**smtp.env))
        with pytest.raises(RetryableProviderError) as info:
            send(provider)
    assert info.value.reason == "smtp_tls"
    assert smtp.messages == []


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_tls_with_a_trusted_certificate_delivers(tmp_path, monkeypatch, tls):
    with smtp_server(tls=tls, cert_dir=tmp_path, auth=("herald", PASSWORD)) as smtp:
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.certfile))
        provider = SmtpEmailProvider(settings=make_settings(**smtp.env))
        send(provider, 1)
        send(provider, 2)
        assert len(smtp.wait_for(2)) == 2
        provider.close()
    assert smtp.connections == 1 and smtp.logins == ["herald"]
