"""Herald's configuration: the one module that reads the environment.

Every process builds one frozen :class:`Settings` at start and passes it down; nothing else looks at
``os.environ``. A missing or malformed variable raises :class:`SettingsError` whose message is one
line naming the variable, which the entry points print before exiting (README, "Configuration").
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from email.headerregistry import Address
from email.utils import parseaddr
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class SettingsError(ValueError):
    """A variable is missing or malformed; ``str()`` is the one-line message for the operator."""


def _url(env: Mapping[str, str], name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name, "").strip() or default
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes:
        raise SettingsError(f"{name}: expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    if parsed.scheme != "sqlite" and not parsed.hostname and parsed.scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"{name}: the URL has no host")
    return raw


def _int(env: Mapping[str, str], name: str, default: int, *, low: int = 0, high: int = 10**9) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name}: expected true/false/1/0/yes/no, got {raw!r}")


def _str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    raw = env.get(name, "").strip()
    return raw or default


_LINE_BREAK = re.compile(r"[\r\n\0]")


def parse_address(value: str, setting: str) -> Address:
    """One ``Name <user@domain>`` or ``user@domain`` setting as an Address; errors name ``setting``.

    The settings check ``MAIL_FROM`` and ``MAIL_REPLY_TO`` with it at start, and the e-mail
    providers parse them with it, so both agree on what is an address.

    Raises:
        ValueError: the value is not one address with a local part and a domain.
    """
    if _LINE_BREAK.search(value):
        raise ValueError(f"{setting}: must not contain line breaks")
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError(f"{setting}: expected 'Name <user@domain>' or 'user@domain', got {value!r}")
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{setting}: not a valid address: {exc}") from None


def _address(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = _str(env, name, default)
    if value is not None:
        try:
            parse_address(value, name)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a Herald process may be configured with (README, "Configuration")."""

    database_url: str | None
    users_database_url: str | None
    templates_database_url: str | None
    notifications_database_url: str | None
    redis_url: str | None
    redis_key_prefix: str
    rabbitmq_url: str | None
    user_service_url: str
    template_service_url: str
    jwt_secret: str = field(repr=False)
    jwt_issuer: str
    jwt_audience: str
    jwt_ttl_s: int
    bootstrap_admin_email: str | None
    bootstrap_admin_password: str | None = field(repr=False)
    smtp_host: str | None
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)
    smtp_starttls: bool
    smtp_ssl: bool
    smtp_timeout_s: int
    mail_from: str
    mail_reply_to: str | None
    fcm_project_id: str | None
    fcm_credentials_file: str | None
    fcm_endpoint: str | None
    outbox_dir: str
    retry_max: int
    retry_backoff_unit_ms: int
    circuit_failure_threshold: int
    circuit_recovery_timeout_s: int
    circuit_success_threshold: int
    rate_limit_per_hour: int
    dlq_alert_threshold: int
    alert_webhook_url: str | None = field(repr=False)
    webhook_allow_private: bool
    webhook_retry_max: int
    webhook_backoff_unit_ms: int
    webhook_timeout_s: int
    log_level: str
    gateway_port: int
    users_port: int
    templates_port: int
    host: str
    web_processes: int
    worker_prefetch_margin: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, embedded: bool = False) -> Settings:
        """Read the environment.

        ``embedded`` is the ``make run`` mode: a data store whose variable is unset becomes ``None``
        (an in-process stand-in) instead of the localhost default, and ``JWT_SECRET`` may be absent.
        """
        env = os.environ if env is None else env
        if env.get("WORKER_PREFETCH", "").strip():
            raise SettingsError(
                "WORKER_PREFETCH: replaced by WORKER_PREFETCH_MARGIN (workers now prefetch their "
                "thread count plus this margin, 0 by default); remove it"
            )

        def local(default: str) -> str | None:
            return None if embedded else default

        # Three slashes: a path relative to the working directory (models.base.connect_url), so each
        # checkout's ``make run`` keeps its own database in its own var/ and ``make clean`` resets it.
        database_url = _url(
            env,
            "DATABASE_URL",
            "sqlite:///var/herald.sqlite3" if embedded else "postgresql://localhost/herald",
            ("postgresql", "postgres", "sqlite"),
        )

        def per_service(name: str) -> str | None:
            return _url(env, name, database_url, ("postgresql", "postgres", "sqlite"))

        jwt_secret = _str(env, "JWT_SECRET")
        if jwt_secret is None and not embedded:
            raise SettingsError("JWT_SECRET: required (a long random string shared by every service)")
        level = _str(env, "LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError(f"LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")
        fcm_project = _str(env, "FCM_PROJECT_ID")
        fcm_credentials = _str(env, "FCM_CREDENTIALS_FILE")
        if fcm_project and not fcm_credentials:
            raise SettingsError("FCM_CREDENTIALS_FILE: required when FCM_PROJECT_ID is set")
        return cls(
            database_url=database_url,
            users_database_url=per_service("USERS_DATABASE_URL"),
            templates_database_url=per_service("TEMPLATES_DATABASE_URL"),
            notifications_database_url=per_service("NOTIFICATIONS_DATABASE_URL"),
            redis_url=_url(env, "REDIS_URL", local("redis://localhost:6379/0"), ("redis", "rediss")),
            redis_key_prefix=_str(env, "REDIS_KEY_PREFIX", ""),
            rabbitmq_url=_url(env, "RABBITMQ_URL", local("amqp://guest:guest@localhost:5672/%2F"), ("amqp", "amqps")),
            user_service_url=_url(env, "USER_SERVICE_URL", "http://localhost:8001", ("http", "https")),
            template_service_url=_url(env, "TEMPLATE_SERVICE_URL", "http://localhost:8002", ("http", "https")),
            jwt_secret=jwt_secret or "",
            jwt_issuer=_str(env, "JWT_ISSUER", "herald"),
            jwt_audience=_str(env, "JWT_AUDIENCE", "herald-api"),
            jwt_ttl_s=_int(env, "JWT_TTL_S", 3600, low=1),
            bootstrap_admin_email=_str(env, "BOOTSTRAP_ADMIN_EMAIL"),
            bootstrap_admin_password=_str(env, "BOOTSTRAP_ADMIN_PASSWORD"),
            smtp_host=_str(env, "SMTP_HOST"),
            smtp_port=_int(env, "SMTP_PORT", 25, low=1, high=65535),
            smtp_username=_str(env, "SMTP_USERNAME"),
            smtp_password=_str(env, "SMTP_PASSWORD"),
            smtp_starttls=_bool(env, "SMTP_STARTTLS", False),
            smtp_ssl=_bool(env, "SMTP_SSL", False),
            smtp_timeout_s=_int(env, "SMTP_TIMEOUT_S", 10, low=1, high=300),
            mail_from=_address(env, "MAIL_FROM", "Herald <no-reply@localhost>"),
            mail_reply_to=_address(env, "MAIL_REPLY_TO"),
            fcm_project_id=fcm_project,
            fcm_credentials_file=fcm_credentials,
            fcm_endpoint=_url(env, "FCM_ENDPOINT", None, ("http", "https")),
            outbox_dir=_str(env, "OUTBOX_DIR", "var/outbox"),
            retry_max=_int(env, "RETRY_MAX", 5, high=100),
            retry_backoff_unit_ms=_int(env, "RETRY_BACKOFF_UNIT_MS", 1000, high=3_600_000),
            circuit_failure_threshold=_int(env, "CIRCUIT_FAILURE_THRESHOLD", 5, low=1),
            circuit_recovery_timeout_s=_int(env, "CIRCUIT_RECOVERY_TIMEOUT_S", 60),
            circuit_success_threshold=_int(env, "CIRCUIT_SUCCESS_THRESHOLD", 2, low=1),
            rate_limit_per_hour=_int(env, "RATE_LIMIT_PER_HOUR", 100),
            dlq_alert_threshold=_int(env, "DLQ_ALERT_THRESHOLD", 50),
            alert_webhook_url=_url(env, "ALERT_WEBHOOK_URL", None, ("http", "https")),
            webhook_allow_private=_bool(env, "WEBHOOK_ALLOW_PRIVATE", False),
            webhook_retry_max=_int(env, "WEBHOOK_RETRY_MAX", 8, high=100),
            webhook_backoff_unit_ms=_int(env, "WEBHOOK_BACKOFF_UNIT_MS", 1000, high=3_600_000),
            webhook_timeout_s=_int(env, "WEBHOOK_TIMEOUT_S", 10, low=1, high=300),
            log_level=level,
            gateway_port=_int(env, "GATEWAY_PORT", 8000, low=1, high=65535),
            users_port=_int(env, "USERS_PORT", 8001, low=1, high=65535),
            templates_port=_int(env, "TEMPLATES_PORT", 8002, low=1, high=65535),
            host=_str(env, "HOST", "0.0.0.0"),
            web_processes=_int(env, "WEB_PROCESSES", 1, low=1, high=64),
            worker_prefetch_margin=_int(env, "WORKER_PREFETCH_MARGIN", 0, high=1000),
        )

    def __repr__(self) -> str:
        return f"Settings({self.redacted()})"

    def warnings(self) -> list[str]:
        """Settings that work but weaken Herald; each entry point logs them at start."""
        out = []
        if self.jwt_secret and len(self.jwt_secret) < 32:
            out.append("JWT_SECRET is shorter than 32 characters; HS256 tokens are only as strong as it")
        return out

    def redacted(self) -> dict[str, object]:
        """The settings as a dict fit for a log line: secrets and URL passwords masked."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.repr and value:
                value = "***"
            elif isinstance(value, str) and "://" in value:
                value = _mask_url(value)
            out[f.name] = value
        return out


def _mask_url(value: str) -> str:
    """The URL with its password and any secret-looking query parameter masked."""
    parsed = urlparse(value)
    if parsed.password:
        parsed = parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@"))
    if parsed.query:
        pairs = [
            (k, "***" if any(w in k.lower() for w in ("pass", "secret", "token", "key")) else v)
            for k, v in parse_qsl(parsed.query, keep_blank_values=True)
        ]
        parsed = parsed._replace(query=urlencode(pairs, safe="*"))
    return urlunparse(parsed)


def load_or_exit(*, embedded: bool | None = None) -> Settings:
    """Settings for an entry point; on a bad variable print its one line and exit with status 2.

    ``embedded`` defaults to the ``HERALD_EMBEDDED`` variable, which ``make run`` sets so that the
    worker side it starts in the same process reads the settings the same way.
    """
    if embedded is None:
        embedded = os.environ.get("HERALD_EMBEDDED", "").strip().lower() in _TRUE
    try:
        return Settings.from_env(embedded=embedded)
    except SettingsError as exc:
        print(f"herald: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
