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

from models.base import Databases, utcnow
from models.notification import Notification
from models.template import Template, TemplateVersion
from models.user import User

log = logging.getLogger(__name__)

#: Arbitrary but fixed key for pg_advisory_xact_lock.
_LOCK_KEY = 0x4E52414C44

Step = tuple[str, Callable[[peewee.Database], None]]


def _notification_lineage(db: peewee.Database) -> None:
    """Correlation id and template version on each notification, and the request id indexed (the
    operator console finds notifications by it). A database created after these were declared
    has them already (step 0001 creates the table from the model as it is now)."""
    table = Notification._meta.table_name
    present = {column.name for column in db.get_columns(table)}
    migrator = SchemaMigrator.from_database(db)
    for name in ("correlation_id", "template_language", "template_version"):
        if name not in present:
            run_migration(migrator.add_column(table, name, Notification._meta.fields[name]))
    with db.bind_ctx([Notification]):
        Notification._schema.create_indexes(safe=True)


STEPS: dict[str, list[Step]] = {
    "users": [
        ("0001_create_users", lambda db: db.create_tables([User], safe=True)),
    ],
    "templates": [
        ("0001_create_templates", lambda db: db.create_tables([Template, TemplateVersion], safe=True)),
    ],
    "notifications": [
        ("0001_create_notification_status", lambda db: db.create_tables([Notification], safe=True)),
        ("0002_notification_lineage", _notification_lineage),
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
