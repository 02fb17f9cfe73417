import pytest

from models.base import connect_url
from settings import Settings, SettingsError

BASE = {"JWT_SECRET": "x" * 32}


def test_defaults_follow_the_contract():
    s = Settings.from_env(BASE)
    assert s.database_url == "postgresql://localhost/herald"
    assert s.users_database_url == s.database_url
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.rabbitmq_url == "amqp://guest:guest@localhost:5672/%2F"
    assert (s.retry_max, s.retry_backoff_unit_ms, s.rate_limit_per_hour) == (5, 1000, 100)
    assert (s.circuit_failure_threshold, s.circuit_recovery_timeout_s, s.circuit_success_threshold) == (5, 60, 2)
    assert s.mail_from == "Herald <no-reply@localhost>"
    assert (s.webhook_allow_private, s.webhook_retry_max, s.webhook_backoff_unit_ms) == (False, 8, 1000)
    assert s.webhook_timeout_s == 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RETRY_MAX", "five"),
        ("SMTP_PORT", "70000"),
        ("SMTP_SSL", "maybe"),
        ("REDIS_URL", "localhost:6379"),
        ("RATE_LIMIT_PER_HOUR", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "mysql://x/y"),
        ("MAIL_FROM", "no address here"),
        ("MAIL_FROM", "Herald <a@b>\nBcc: x@y"),
        ("MAIL_REPLY_TO", "support"),
        ("WEBHOOK_ALLOW_PRIVATE", "sometimes"),
        ("WEBHOOK_RETRY_MAX", "-1"),
        ("WEBHOOK_BACKOFF_UNIT_MS", "1s"),
        ("WEBHOOK_TIMEOUT_S", "0"),
    ],
)
def test_malformed_values_name_the_variable(name, value):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**BASE, name: value})
    assert str(err.value).startswith(f"{name}:")
    assert "\n" not in str(err.value)


def test_jwt_secret_required_outside_embedded_mode():
    with pytest.raises(SettingsError, match=r"^JWT_SECRET:"):
        Settings.from_env({})
    embedded = Settings.from_env({}, embedded=True)
    assert embedded.redis_url is None and embedded.rabbitmq_url is None
    assert embedded.database_url.startswith("sqlite:")


def test_limits_accept_zero_and_large_values():
    s = Settings.from_env({**BASE, "RATE_LIMIT_PER_HOUR": "1000000000", "DLQ_ALERT_THRESHOLD": "0"})
    assert (s.rate_limit_per_hour, s.dlq_alert_threshold) == (10**9, 0)


def test_webhook_settings_are_read():
    s = Settings.from_env(
        {**BASE, "WEBHOOK_ALLOW_PRIVATE": "yes", "WEBHOOK_RETRY_MAX": "0", "WEBHOOK_BACKOFF_UNIT_MS": "50"}
    )
    assert (s.webhook_allow_private, s.webhook_retry_max, s.webhook_backoff_unit_ms) == (True, 0, 50)


def test_booleans_accept_the_contract_spellings():
    for raw, expected in [("yes", True), ("1", True), ("TRUE", True), ("no", False), ("0", False)]:
        assert Settings.from_env({**BASE, "SMTP_STARTTLS": raw}).smtp_starttls is expected


def test_redacted_hides_secrets():
    s = Settings.from_env({**BASE, "SMTP_PASSWORD": "hunter2", "RABBITMQ_URL": "amqp://u:pw@h:5672/v"})
    text = str(s.redacted())
    assert "hunter2" not in text and ":pw@" not in text and "x" * 32 not in text
    assert "hunter2" not in repr(s)


def test_webhook_and_query_secrets_are_masked():
    s = Settings.from_env(
        {
            **BASE,
            "ALERT_WEBHOOK_URL": "https://hooks.example.com/services/T0/B0/SECRETPATH",
            "DATABASE_URL": "postgresql://db/herald?password=hunter3&sslmode=require",
        }
    )
    text = str(s.redacted()) + repr(s)
    assert "SECRETPATH" not in text and "hunter3" not in text and "sslmode=require" in text


def test_a_short_jwt_secret_starts_with_a_warning():
    s = Settings.from_env({"JWT_SECRET": "short"})
    assert any("JWT_SECRET" in w for w in s.warnings())
    assert Settings.from_env(BASE).warnings() == []


def test_the_embedded_database_lives_in_the_working_directorys_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = Settings.from_env({}, embedded=True).database_url
    assert connect_url(url).database == str(tmp_path / "var" / "herald.sqlite3")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/herald.sqlite3", "{cwd}/var/herald.sqlite3"),
        ("sqlite:///./data/h%20d.db", "{cwd}/data/h d.db"),
        ("sqlite:////srv/herald/herald.sqlite3", "/srv/herald/herald.sqlite3"),
        ("sqlite://", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls_read_three_slashes_as_relative_and_four_as_absolute(tmp_path, monkeypatch, url, path):
    monkeypatch.chdir(tmp_path)
    db = connect_url(url)
    monkeypatch.chdir("/")  # resolved once: a later change of directory does not move the file
    assert db.database == path.format(cwd=tmp_path)


def test_a_sqlite_url_with_a_host_is_refused():
    with pytest.raises(ValueError, match="names a host"):
        connect_url("sqlite://var/herald.sqlite3")


def test_mail_reply_to_is_optional():
    assert Settings.from_env(BASE).mail_reply_to is None
    s = Settings.from_env({**BASE, "MAIL_REPLY_TO": " Support <support@example.com> "})
    assert s.mail_reply_to == "Support <support@example.com>"
