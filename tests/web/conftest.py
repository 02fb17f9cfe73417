"""Fixtures of the gateway's recording tests."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import make_env


@pytest.fixture
async def burst_stack(aiohttp_server, aiohttp_client, database_url, redis_prefix, rabbit_vhost):
    """The stack on a vhost of its own, so the queue holds only this test's messages."""
    from tests.support.stack import start_stack

    url, _ = rabbit_vhost
    env = make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url)
    stack = await start_stack(aiohttp_server, aiohttp_client, env)
    stack.caller = str(uuid.uuid4())
    stack.admin_token = stack.token(stack.caller, "admin")
    return stack, await stack.create_user(), await stack.create_template()
