"""The notification queries on a real PostgreSQL database: the replay marks and the stuck report."""

from __future__ import annotations

import datetime as dt
import uuid

from models.base import utcnow
from models.dao import notifications as dao
from models.dao import users
from models.notification import FAILED, PENDING, REPLAYED
from models.user import User
from tests.support.factories import notification


def test_mark_replayed_then_unmark_restores_status_error_and_history(db):
    row = notification(status=FAILED, error="smtp_5xx: 550")
    dao.record_attempt(row.notification_id, outcome="failed", status=FAILED, error="smtp_5xx: 550")
    marked = dao.mark_replayed(row.notification_id)
    assert (marked.status, marked.error) == (PENDING, None)
    assert [a["outcome"] for a in marked.attempts] == ["failed", REPLAYED]
    assert marked.retry_count == 0, "a replay is not a retry"
    undone = dao.unmark_replayed(row.notification_id, FAILED, "smtp_5xx: 550")
    assert (undone.status, undone.error) == (FAILED, "smtp_5xx: 550")
    assert [a["outcome"] for a in undone.attempts] == ["failed"]
    assert dao.mark_replayed(str(uuid.uuid4())) is None


def test_pending_since_counts_only_old_pending_ones_oldest_first(db):
    old = utcnow() - dt.timedelta(hours=2)
    stuck = [notification(updated_at=old + dt.timedelta(minutes=i)) for i in range(3)]
    notification()  # recent
    notification(status=FAILED, updated_at=old)  # not pending
    count, sample = dao.pending_since(utcnow() - dt.timedelta(hours=1), sample=2)
    assert count == 3 and sample == [stuck[0].notification_id, stuck[1].notification_id]


def test_clear_push_token_only_clears_the_token_it_was_told(db):
    user = User.create(
        name="Ada", email=f"{uuid.uuid4().hex}@example.com", password_hash="x", push_token="old-token-0123456789"
    )
    assert users.clear_push_token(str(user.id), "some-other-token-0123") == 0
    assert User.get_by_id(user.id).push_token == "old-token-0123456789"
    assert users.clear_push_token(str(user.id), "old-token-0123456789") == 1
    assert User.get_by_id(user.id).push_token is None


def test_record_attempt_only_from_refuses_a_status_that_moved_on(db):
    row = notification(status="delivered")
    assert (
        dao.record_attempt(
            row.notification_id, outcome="cancelled", status="cancelled", only_from=("scheduled", "pending")
        )
        is None
    )
    assert dao.get(row.notification_id).status == "delivered"
    open_row = notification()
    done = dao.record_attempt(
        open_row.notification_id,
        outcome="cancelled",
        status="cancelled",
        error="cancelled by the caller",
        only_from=("scheduled", "pending"),
    )
    assert (done.status, done.error, done.retry_count) == ("cancelled", "cancelled by the caller", 0)
