"""Database plumbing: one proxy per service's data, bound at start to the URL that service was given.

Each service may have its own database (users, templates, notifications). The three
proxies let each service point at its own; when the URLs are equal they share one pooled database
object, so a small install needs one PostgreSQL database and one pool.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlparse

import peewee
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

users_db = peewee.DatabaseProxy()
templates_db = peewee.DatabaseProxy()
notifications_db = peewee.DatabaseProxy()

#: Connections one process may hold per database; web executors and worker threads stay below it.
POOL_SIZE = 32
#: A connection back in the pool for less than this goes out again unchecked (see :class:`_Pool`).
CHECK_AFTER_IDLE_S = 1.0


def utcnow() -> dt.datetime:
    """Naive UTC: what the ``timestamp`` columns store, and what :func:`iso` turns back into ISO 8601."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 with an explicit ``Z``, so a client never guesses the zone."""
    return None if value is None else value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def connect_url(url: str) -> peewee.Database:
    """A pooled database for a ``postgresql://`` or ``sqlite:`` URL; nothing connects yet.

    SQLite URLs read as SQLAlchemy's do, so a URL means the same file to every tool that takes one:
    ``sqlite:///var/herald.sqlite3`` (three slashes) is relative to the working directory, which is
    how ``make run`` keeps its data inside the checkout; ``sqlite:////srv/herald.sqlite3`` (four) is
    absolute; ``sqlite://`` and ``sqlite:///:memory:`` are in memory. A relative path is resolved
    here, once, so a later change of directory cannot move the database under a running process.

    Raises:
        ValueError: a ``sqlite://`` URL that names a host (``sqlite://var/x``): a slash is missing
            and the path would silently lose its first part.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        if parsed.netloc:
            raise ValueError(f"sqlite URL {url!r} names a host; write sqlite:///relative or sqlite:////absolute")
        path = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        path = os.path.abspath(path) if path and path != ":memory:" else ":memory:"
        return PooledSqliteDatabase(
            path,
            max_connections=POOL_SIZE,
            timeout=10,
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000},
            check_same_thread=False,
        )
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return _Pool(
        unquote(parsed.path.lstrip("/")) or "herald",
        user=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        host=parsed.hostname or None,
        port=parsed.port or 5432,
        max_connections=POOL_SIZE,
        stale_timeout=300,
        timeout=10,
        connect_timeout=int(query.pop("connect_timeout", 3)),
        **query,
    )


class _Pool(PooledPostgresqlDatabase):
    """peewee's pool, which checks every connection it hands out with a ``SELECT 1``, except one
    checked in idle less than :data:`CHECK_AFTER_IDLE_S` ago: a worker takes a connection for each
    message (``middleware/database.py``), and the check was a round trip per delivery. A connection
    that dies within that second fails its first query as an absent PostgreSQL does (the caller's
    outage handling), and is dropped at check-in."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._checked_in: dict[int, float] = {}

    def _close(self, conn, close_conn=False):
        key = self.conn_key(conn)
        self._checked_in[key] = time.monotonic()
        super()._close(conn, close_conn)
        if close_conn or conn.closed:  # not back in the pool
            self._checked_in.pop(key, None)

    def _is_closed(self, conn):
        checked_in = self._checked_in.pop(self.conn_key(conn), None)
        recent = checked_in is not None and time.monotonic() - checked_in < CHECK_AFTER_IDLE_S
        if recent and not conn.closed and self._adapter.txn_status(conn) == self._adapter.txn_idle:
            return False
        return super()._is_closed(conn)


@dataclass(frozen=True)
class Databases:
    """The databases one process uses, keyed by the service that owns the data."""

    users: peewee.Database | None
    templates: peewee.Database | None
    notifications: peewee.Database | None

    def distinct(self) -> list[peewee.Database]:
        seen: list[peewee.Database] = []
        for db in (self.users, self.templates, self.notifications):
            if db is not None and all(db is not s for s in seen):
                seen.append(db)
        return seen

    def close(self) -> None:
        for db in self.distinct():
            db.close_all() if hasattr(db, "close_all") else db.close()


def bind_databases(
    *, users: str | None = None, templates: str | None = None, notifications: str | None = None
) -> Databases:
    """Point the proxies at the given URLs (``None`` leaves a proxy unbound) and return the objects."""
    made: dict[str, peewee.Database] = {
        proxy.obj.herald_url: proxy.obj
        for proxy in (users_db, templates_db, notifications_db)
        if proxy.obj is not None and hasattr(proxy.obj, "herald_url")
    }

    def get(url: str | None) -> peewee.Database | None:
        # One database object per URL per process, so every user of a URL shares its pool.
        if url is None:
            return None
        if url not in made:
            made[url] = connect_url(url)
            made[url].herald_url = url
        return made[url]

    dbs = Databases(users=get(users), templates=get(templates), notifications=get(notifications))
    for proxy, db in ((users_db, dbs.users), (templates_db, dbs.templates), (notifications_db, dbs.notifications)):
        if db is not None:
            proxy.initialize(db)
    return dbs
