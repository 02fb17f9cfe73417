"""What PostgreSQL and Redis raise when they cannot be reached: one list for the web processes (a
503) and the workers (the message waits), so both treat the same failures as an outage."""

from __future__ import annotations

import peewee
import redis.exceptions
from playhouse.pool import MaxConnectionsExceeded

UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    peewee.OperationalError,
    peewee.InterfaceError,
    MaxConnectionsExceeded,
)
