"""``python -m scripts.migrate``: bring every service's database to the current schema, then make
sure the bootstrap admin exists. Safe to run any number of times, and from several places at once.
"""

from __future__ import annotations

import logging
import secrets
import sys

import peewee

from logs import setup_logging
from models.base import bind_databases
from models.migrations import migrate
from models.passwords import hash_password
from models.user import User
from settings import Settings, load_or_exit

log = logging.getLogger("scripts.migrate")


def ensure_admin(settings: Settings, *, password: str | None = None) -> tuple[str, str | None] | None:
    """Create the bootstrap admin if no user has that e-mail; return (email, password if generated).

    Without ``BOOTSTRAP_ADMIN_EMAIL`` nothing is created (``password`` is ``make run``'s generated one).
    """
    email = (settings.bootstrap_admin_email or "").lower()
    if not email:
        return None
    secret = settings.bootstrap_admin_password or password
    generated = None
    if secret is None:
        secret = generated = secrets.token_urlsafe(12)
    with User._meta.database.connection_context():
        if User.get_or_none(User.email == email) is not None:
            return email, None
        try:
            User.create(
                name="Administrator",
                email=email,
                password_hash=hash_password(secret),
                role="admin",
                preferences={"email": True, "push": True},
            )
        except peewee.IntegrityError:  # another migrator created it a moment ago
            return email, None
    log.info("bootstrap admin created", extra={"email": email})
    return email, generated


def run(settings: Settings) -> list[str]:
    dbs = bind_databases(
        users=settings.users_database_url,
        templates=settings.templates_database_url,
        notifications=settings.notifications_database_url,
    )
    try:
        applied = migrate(dbs)
        log.info("migrations applied: %s", ", ".join(applied) or "none (already current)")
        created = ensure_admin(settings)
        if created and created[1]:
            print(f"bootstrap admin {created[0]} created with password: {created[1]}", file=sys.stderr)
        return applied
    finally:
        dbs.close()


def main() -> None:
    settings = load_or_exit()
    setup_logging(service="migrate", level=settings.log_level)
    try:
        run(settings)
    except Exception as exc:
        log.error("migration failed: %s", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
