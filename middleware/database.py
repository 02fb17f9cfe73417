"""A pooled database connection per message, returned to the pool after it.

peewee keeps connections per thread; opening at the start of a message and closing at its end
means a worker thread never holds a connection while idle and never reuses one that died with a
PostgreSQL restart (the pool checks idle connections before handing them out).
"""

from __future__ import annotations

from dramatiq import Middleware


class DatabaseConnection(Middleware):
    def __init__(self, *, databases) -> None:
        self.databases = databases

    def before_process_message(self, broker, message):
        for db in self.databases.distinct():
            db.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        for db in self.databases.distinct():
            if not db.is_closed():
                db.close()

    after_skip_message = after_process_message
