"""The notifications pool on PostgreSQL: a connection going straight back out is not checked (one
round trip fewer per worker message), one idle longer is, and a connection that died is never
handed out twice."""

from __future__ import annotations

import time

import psycopg2
import pytest

from models import base
from models.unavailable import UNAVAILABLE
from tests.support.resources import PG_URL


@pytest.fixture
def pool(database_url):
    db = base.connect_url(database_url)
    yield db
    db.close_all()


def last_query(pid: int) -> str:
    with psycopg2.connect(PG_URL.format(name="postgres")) as conn, conn.cursor() as cur:
        cur.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,))
        return cur.fetchone()[0]


def checked_out_again(pool) -> int:
    pool.connect()
    pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    pool.close()
    pool.connect()
    return pid


def test_a_connection_back_within_the_window_goes_out_unchecked(pool):
    pid = checked_out_again(pool)
    assert last_query(pid) == "SELECT pg_backend_pid()", "no SELECT 1 on the way out"
    assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] == pid, "the same connection, reused"
    pool.close()


def test_a_connection_idle_past_the_window_is_checked(pool, monkeypatch):
    monkeypatch.setattr(base, "CHECK_AFTER_IDLE_S", 0.05)
    pool.connect()
    pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    pool.close()
    time.sleep(0.1)
    pool.connect()
    assert last_query(pid) == "SELECT 1"
    pool.close()


def test_a_connection_that_died_idle_past_the_window_is_replaced_before_use(pool, monkeypatch):
    monkeypatch.setattr(base, "CHECK_AFTER_IDLE_S", 0.05)
    pool.connect()
    pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    pool.close()
    with psycopg2.connect(PG_URL.format(name="postgres")) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.1)
    pool.connect()
    assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    pool.close()


def test_a_connection_that_died_within_the_window_fails_once_as_an_outage_then_is_dropped(pool):
    pool.connect()
    pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    pool.close()
    with psycopg2.connect(PG_URL.format(name="postgres")) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    pool.connect()
    with pytest.raises(UNAVAILABLE):
        pool.execute_sql("SELECT 1")
    pool.close()
    pool.connect()
    assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    pool.close()
