"""``python -m scripts.migrate``: bring every service's database to the current schema, then make
sure the bootstrap admin exists. Safe to run any number of times, and from several places at once.
"""

from __future__ import annotations

import logging
import secrets
import sys

import peewee

from logs import setup_logging
from models.base import bind_databases, utcnow
from models.migrations import migrate
from models.passwords import hash_password, verify_password
from models.user import User
from settings import Settings, load_or_exit

log = logging.getLogger("scripts.migrate")


def ensure_admin(settings: Settings, *, match_login: bool = False) -> tuple[str, str | None] | None:
    """Create the bootstrap admin if no user has that e-mail; return (email, password if generated).

    Without ``BOOTSTRAP_ADMIN_EMAIL`` nothing is created. An account that already exists is left as
    it is, password included, even when ``BOOTSTRAP_ADMIN_PASSWORD`` differs: migrations run on
    every release, and a release must neither undo a password an admin has since changed nor bring
    back a bootstrap password that has leaked.

    ``match_login`` is for ``make run`` only, which prints a login and promises it works: there the
    existing account is brought in line with the configured password (and made an active admin),
    because the database is the developer's own and a stale password would lock them out of the
    system they just started.
    """
    email = (settings.bootstrap_admin_email or "").lower()
    if not email:
        return None
    secret = settings.bootstrap_admin_password
    generated = None
    if secret is None:
        secret = generated = secrets.token_urlsafe(12)
    with User._meta.database.connection_context():
        user = User.get_or_none(User.email == email)
        if user is None:
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
        if match_login and generated is None:
            _match_login(user, secret)
    return email, None


def _match_login(user: User, password: str) -> None:
    """Make ``user`` an active admin whose password is ``password``, writing only what differs."""
    changes: dict = {}
    if not verify_password(password, user.password_hash):
        changes[User.password_hash] = hash_password(password)
    if user.role != "admin":
        changes[User.role] = "admin"
    if not user.is_active:
        changes[User.is_active] = True
    if changes:
        User.update({**changes, User.updated_at: utcnow()}).where(User.id == user.id).execute()
        log.warning(
            "bootstrap admin reset to the login make run prints",
            extra={"email": user.email, "fields": sorted(f.name for f in changes)},
        )


def run(settings: Settings, *, match_admin_login: bool = False) -> list[str]:
    """Migrate, then ensure the bootstrap admin (``match_admin_login``: see :func:`ensure_admin`)."""
    dbs = bind_databases(
        users=settings.users_database_url,
        templates=settings.templates_database_url,
        notifications=settings.notifications_database_url,
    )
    try:
        applied = migrate(dbs)
        log.info("migrations applied: %s", ", ".join(applied) or "none (already current)")
        created = ensure_admin(settings, match_login=match_admin_login)
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
