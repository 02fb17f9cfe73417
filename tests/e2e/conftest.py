import pytest

from tests.conftest import make_env


@pytest.fixture
def env(database_url, redis_prefix, rabbit_vhost):
    """End-to-end tests run workers, so each gets a vhost of its own: no message of another test
    can reach its worker, and its queues start empty."""
    url, _ = rabbit_vhost
    return make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url)
