"""Versioned, idempotent schema migrations, one list per service's database.

Each step runs once per database and is recorded in ``herald_migrations``; a second run applies
nothing. On PostgreSQL an advisory lock serialises two migrators started at once (compose and a
Helm hook can race). New steps go at the end of their list and are never edited once released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_migration

from models.api_key import ApiKey
from models.base import Databases, utcnow
from models.notification import Notification
from models.template import Template, TemplateVersion
from models.user import User
from models.webhook import Webhook, WebhookDelivery

log = logging.getLogger(__name__)

#: Arbitrary but fixed key for pg_advisory_xact_lock.
_LOCK_KEY = 0x4E52414C44

Step = tuple[str, Callable[[peewee.Database], None]]


def add_columns(model: type[peewee.Model], *names: str) -> Callable[[peewee.Database], None]:
    """A step adding the model's fields ``names`` to its table where they are missing.

    A database created after the fields were declared already has them (step 0001 creates the
    table from the model as it is now); one created before gets them here.
    """

    def step(db: peewee.Database) -> None:
        table = model._meta.table_name
        present = {column.name for column in db.get_columns(table)}
        migrator = SchemaMigrator.from_database(db)
        for name in names:
            if name not in present:
                field = model._meta.fields[name]
                run_migration(migrator.add_column(table, field.column_name, field))

    return step


def add_indexes(model: type[peewee.Model]) -> Callable[[peewee.Database], None]:
    """A step creating every index the model declares that the table lacks (``IF NOT EXISTS``)."""

    def step(db: peewee.Database) -> None:
        with db.bind_ctx([model]):
            model._schema.create_indexes(safe=True)

    return step


STEPS: dict[str, list[Step]] = {
    "users": [
        ("0001_create_users", lambda db: db.create_tables([User], safe=True)),
    ],
    "templates": [
        ("0001_create_templates", lambda db: db.create_tables([Template, TemplateVersion], safe=True)),
    ],
    "notifications": [
        ("0001_create_notification_status", lambda db: db.create_tables([Notification], safe=True)),
        ("0002_notification_mode", add_columns(Notification, "mode")),
        ("0003_create_api_keys", lambda db: db.create_tables([ApiKey], safe=True)),
        ("0004_create_webhooks", lambda db: db.create_tables([Webhook, WebhookDelivery], safe=True)),
        ("0005_schedule_columns", add_columns(Notification, "send_at", "expires_at", "payload")),
        ("0006_schedule_index", add_indexes(Notification)),
        (
            "0007_notification_lineage",
            add_columns(Notification, "correlation_id", "template_language", "template_version"),
        ),
        ("0008_lineage_index", add_indexes(Notification)),
    ],
}


class _Applied(peewee.Model):
    domain = peewee.CharField(max_length=32)
    name = peewee.CharField(max_length=128)
    applied_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "herald_migrations"
        indexes = ((("domain", "name"), True),)


def migrate(dbs: Databases) -> list[str]:
    """Apply every pending step to the database of its domain; return what was applied."""
    applied: list[str] = []
    for domain, steps in STEPS.items():
        db = getattr(dbs, domain)
        if db is None:
            continue
        with db.connection_context(), db.atomic(), _Applied.bind_ctx(db):
            if isinstance(db, peewee.PostgresqlDatabase):
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            db.create_tables([_Applied], safe=True)
            done = {row.name for row in _Applied.select().where(_Applied.domain == domain)}
            for name, step in steps:
                if name in done:
                    continue
                log.info("applying migration %s/%s", domain, name)
                step(db)
                _Applied.create(domain=domain, name=name)
                applied.append(f"{domain}/{name}")
    return applied
