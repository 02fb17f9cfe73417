"""Counting queries on NOTIFICATION_STATUS: the operator console's overview of the last hour.

They count the notifications *accepted* in a window by what has become of them since (delivered,
failed, still pending). That is one range on ``created_at``, which the (status, created_at) index
serves when every status is named (PostgreSQL then reads one range per status), so an overview
refreshed every few seconds never scans the table; counting by ``delivered_at`` or ``updated_at``
would need indexes that every status write on the workers' hot path would pay for.
"""

from __future__ import annotations

import datetime as dt

import peewee

from models.notification import STATUSES, Notification

Counts = dict[tuple[str, str], int]


def _accepted_since(query: peewee.ModelSelect, since: dt.datetime) -> peewee.ModelSelect:
    return query.where(Notification.status.in_(STATUSES) & (Notification.created_at >= since))


def by_channel_and_status(since: dt.datetime) -> Counts:
    """(channel, status) -> notifications accepted since ``since`` that have that status now."""
    query = Notification.select(Notification.notification_type, Notification.status, peewee.fn.COUNT(Notification.id))
    rows = _accepted_since(query, since).group_by(Notification.notification_type, Notification.status).tuples()
    return {(channel, status): count for channel, status, count in rows}


def _bucket(since: dt.datetime, interval_s: int) -> peewee.SQL:
    """The index (0, 1, ...) of the ``interval_s`` window after ``since`` a row was accepted in."""
    db = Notification._meta.database
    if isinstance(db.obj if hasattr(db, "obj") else db, peewee.PostgresqlDatabase):
        return peewee.SQL("floor(extract(epoch from (created_at - %s::timestamp)) / %s)::int", (since, interval_s))
    return peewee.SQL("cast((julianday(created_at) - julianday(?)) * 86400.0 / ? as integer)", (since, interval_s))


def by_interval(since: dt.datetime, *, interval_s: int, count: int) -> list[Counts]:
    """For each of ``count`` windows of ``interval_s`` seconds from ``since``, the counts of
    :func:`by_channel_and_status` of the notifications accepted in it."""
    bucket = _bucket(since, interval_s)
    query = Notification.select(
        bucket.alias("bucket"),
        Notification.notification_type,
        Notification.status,
        peewee.fn.COUNT(Notification.id),
    )
    rows = _accepted_since(query, since).group_by(
        peewee.SQL("bucket"), Notification.notification_type, Notification.status
    )
    out: list[Counts] = [{} for _ in range(count)]
    for index, channel, status, n in rows.tuples():
        if index is not None and 0 <= int(index) < count:
            out[int(index)][(channel, status)] = n
    return out
