"""The outbox writes what the real providers would send, and the factory picks between them."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest

import providers.outbox
from providers.email import SmtpEmailProvider
from providers.errors import InvalidTokenError, PermanentProviderError
from providers.factory import email_provider, push_provider
from providers.mail_message import message_bytes
from providers.outbox import OutboxEmailProvider, OutboxPushProvider, safe_name
from providers.push import FcmPushProvider
from settings import Settings

TOKEN = "dXk3:APA91b" + "x" * 140


def make_settings(tmp_path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "JWT_SECRET": "test-secret-for-herald-0123456789",
            "OUTBOX_DIR": str(tmp_path / "out"),
            "MAIL_FROM": "Herald <no-reply@herald.test>",
            **env,
        }
    )


def test_email_outbox_writes_a_parseable_multipart_eml(tmp_path):
    provider = OutboxEmailProvider(settings=make_settings(tmp_path))
    provider.send(
        to="ada@example.com",
        subject="Welcome Ada",
        html="<h1>Hi</h1>",
        text="Hi",
        notification_id="n-1",
    )
    [path] = (tmp_path / "out").iterdir()
    assert path.name == "n-1@herald.test.eml"
    msg = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().strip() == "Hi"
    assert msg.get_body(("html",)).get_content().strip() == "<h1>Hi</h1>"
    assert msg["Subject"] == "Welcome Ada"
    assert msg["From"] == "Herald <no-reply@herald.test>"
    assert msg["Message-ID"] == "<n-1@herald.test>"
    assert msg["X-Herald-Notification-ID"] == "n-1"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Reply-To"] is None


def test_email_outbox_writes_the_bytes_smtp_would_carry(tmp_path, monkeypatch):
    sent: list[bytes] = []

    def recording(**kwargs):
        data, rcpt = message_bytes(**kwargs)
        sent.append(data)
        return data, rcpt

    monkeypatch.setattr(providers.outbox, "message_bytes", recording)
    OutboxEmailProvider(settings=make_settings(tmp_path)).send(
        to="ada@example.com", subject="Hi", html="<p>x</p>", text=".\nFrom here", notification_id="n-5"
    )
    [path] = (tmp_path / "out").iterdir()
    assert path.read_bytes() == sent[0]
    assert sent[0].count(b"\r\n") == sent[0].count(b"\n")


def test_email_outbox_writes_reply_to_when_configured_and_refuses_a_bad_one(tmp_path):
    provider = OutboxEmailProvider(settings=make_settings(tmp_path, MAIL_REPLY_TO="Support <support@herald.test>"))
    provider.send(to="ada@example.com", subject="Hi", html="<p>x</p>", text="x", notification_id="n-4")
    [path] = (tmp_path / "out").iterdir()
    assert message_from_bytes(path.read_bytes(), policy=policy.default)["Reply-To"] == "Support <support@herald.test>"
    with pytest.raises(ValueError, match=r"^MAIL_REPLY_TO: "):
        OutboxEmailProvider(settings=make_settings(tmp_path, MAIL_REPLY_TO="support"))


def test_email_outbox_retry_overwrites_and_leaves_no_temp_files(tmp_path):
    provider = OutboxEmailProvider(settings=make_settings(tmp_path))
    for subject in ("first", "second"):
        provider.send(to="ada@example.com", subject=subject, html="<p>x</p>", text="x", notification_id="n-2")
    [path] = (tmp_path / "out").iterdir()
    assert message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"] == "second"


def test_email_outbox_refuses_header_injection_like_smtp(tmp_path):
    provider = OutboxEmailProvider(settings=make_settings(tmp_path))
    with pytest.raises(PermanentProviderError) as info:
        provider.send(
            to="ada@example.com", subject="x\r\nBcc: v@example.com", html="x", text="x", notification_id="n-3"
        )
    assert info.value.reason == "invalid_header"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_push_outbox_writes_the_fcm_v1_request_body(tmp_path):
    provider = OutboxPushProvider(settings=make_settings(tmp_path))
    name = provider.send(
        token=TOKEN,
        title="Hi",
        body="Body",
        image="https://example.com/i.png",
        data={"notification_id": "n-1", "link": "https://example.com"},
    )
    [path] = (tmp_path / "out").iterdir()
    assert path.suffix == ".json" and name.endswith(path.stem)
    body = json.loads(path.read_text())
    assert body["validate_only"] is False
    message = body["message"]
    assert message["token"] == TOKEN
    assert message["notification"] == {"title": "Hi", "body": "Body", "image": "https://example.com/i.png"}
    assert message["data"] == {"notification_id": "n-1", "link": "https://example.com"}


def test_push_outbox_validates_the_token_like_fcm(tmp_path):
    provider = OutboxPushProvider(settings=make_settings(tmp_path))
    with pytest.raises(InvalidTokenError):
        provider.send(token="nope", title="Hi", body="Body", image=None, data={})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "message_id, expected",
    [("<a.b@c>", "a.b@c"), ("<../../etc/passwd@x>", "_.._etc_passwd@x"), ("<a/b\\c@d>", "a_b_c@d")],
)
def test_safe_name_cannot_escape_the_folder(message_id, expected):
    assert safe_name(message_id) == expected


def test_factory_uses_real_providers_only_when_configured(tmp_path):
    credentials = tmp_path / "sa.json"
    credentials.write_text("{}")
    configured = make_settings(
        tmp_path, SMTP_HOST="127.0.0.1", FCM_PROJECT_ID="p", FCM_CREDENTIALS_FILE=str(credentials)
    )
    bare = make_settings(tmp_path)
    assert isinstance(email_provider(configured), SmtpEmailProvider)
    assert isinstance(push_provider(configured), FcmPushProvider)
    assert isinstance(email_provider(bare), OutboxEmailProvider)
    assert isinstance(push_provider(bare), OutboxPushProvider)
