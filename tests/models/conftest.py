"""The models' tests: the users and notifications data bound to the test's own database."""

from __future__ import annotations

import pytest

from models.base import bind_databases


@pytest.fixture
def db(database_url):
    dbs = bind_databases(users=database_url, notifications=database_url)
    for database in dbs.distinct():
        database.connect(reuse_if_open=True)
    yield dbs
    dbs.close()
