"""API keys as bearer credentials, through the authenticator the gateway uses, on PostgreSQL:
the caller a key stands for, revocation seen within 5 s by every process, expiry, last use."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from aiohttp.test_utils import make_mocked_request

from models.base import utcnow
from models.dao import api_keys as dao
from web.common.api_key_auth import KEY_CACHE_S, ApiKeyAuthenticator, for_app
from web.common.app import create_base_app, in_db
from web.common.auth import Caller, authenticate, issue_token, require_key_manager
from web.common.envelope import ApiError


@pytest.fixture
async def app(aiohttp_client, settings):
    app = create_base_app(
        settings, service="gateway", checks={}, database_urls={"notifications": settings.notifications_database_url}
    )
    await aiohttp_client(app)  # runs the contexts: database threads, Redis
    return app


async def new_key(app, mode: str = "live", expires_at: dt.datetime | None = None) -> tuple[str, str]:
    row, key = await in_db(app, dao.create, name="app", mode=mode, expires_at=expires_at, created_by="admin")
    return str(row.id), key


async def refused(auth: ApiKeyAuthenticator, key: str) -> str:
    with pytest.raises(ApiError) as err:
        await auth.authenticate(key)
    assert err.value.code == "UNAUTHORIZED" and err.value.status == 401
    assert key not in err.value.message and key[12:] not in err.value.message
    return err.value.message


async def test_a_key_acts_as_a_service_caller_named_after_its_id(app):
    auth = for_app(app)
    live_id, live = await new_key(app)
    test_id, test = await new_key(app, "test")
    caller = await auth.authenticate(live)
    assert caller == Caller(sub=f"apikey:{live_id}", role="service", mode="live")
    assert caller.is_api_key and caller.privileged
    assert await auth.authenticate(test) == Caller(sub=f"apikey:{test_id}", role="service", mode="test")
    await auth.flush()


async def test_unknown_and_malformed_keys_are_refused(app):
    auth = for_app(app)
    _, key = await new_key(app)
    assert await refused(auth, key[:-1] + ("A" if key[-1] != "A" else "B")) == "invalid API key"
    assert await refused(auth, "hk_live_short") == "invalid API key"
    assert await refused(auth, "not-a-key-at-all") == "invalid API key"


async def test_revocation_is_seen_by_every_process_within_five_seconds(app):
    """Two authenticators are two gateway processes, each with its own cache."""
    lookups = []

    async def counted(fn, *args, **kwargs):
        lookups.append(fn.__name__)
        return await in_db(app, fn, *args, **kwargs)

    processes = [ApiKeyAuthenticator(run_db=counted), ApiKeyAuthenticator(run_db=counted)]
    key_id, key = await new_key(app)
    for auth in processes:
        await auth.authenticate(key)
        await auth.authenticate(key)
    assert lookups.count("by_hash") == 2, "each process looks a key up once, then uses its copy"
    assert KEY_CACHE_S < 5
    revoked_at = time.monotonic()
    await in_db(app, dao.revoke, key_id)
    for auth in processes:
        while True:
            try:
                await auth.authenticate(key)
            except ApiError as err:
                assert err.message == "this API key has been revoked"
                break
            assert time.monotonic() - revoked_at < 5, "a revoked key was still accepted after 5 s"
            await asyncio.sleep(0.2)
    assert time.monotonic() - revoked_at < 5
    for auth in processes:
        await auth.flush()


async def test_an_expired_key_is_refused_at_once_even_when_cached(app):
    auth = for_app(app)
    _, key = await new_key(app, expires_at=utcnow() + dt.timedelta(seconds=1))
    await auth.authenticate(key)
    await asyncio.sleep(1.1)
    assert await refused(auth, key) == "this API key has expired"
    await auth.flush()


async def test_last_used_is_written_once_a_minute_per_process_not_per_request(app):
    clock = [1000.0]
    writes = []

    async def run_db(fn, *args, **kwargs):
        if fn is dao.touch:
            writes.append(args)
        return await in_db(app, fn, *args, **kwargs)

    auth = ApiKeyAuthenticator(run_db=run_db, clock=lambda: clock[0])
    key_id, key = await new_key(app)
    for step in (0, 10, 30, 59):
        clock[0] = 1000.0 + step
        await auth.authenticate(key)
    await auth.flush()
    assert len(writes) == 1
    first = (await in_db(app, dao.get, key_id)).last_used_at
    assert first is not None and abs((utcnow() - first).total_seconds()) < 5
    clock[0] = 1061.0
    await auth.authenticate(key)
    await auth.flush()
    assert len(writes) == 2


async def test_the_request_hook_tells_keys_from_jwts(app, settings):
    auth = for_app(app)
    key_id, key = await new_key(app, "test")
    with_key = make_mocked_request("GET", "/", headers={"Authorization": f"Bearer {key}"})
    assert (await authenticate(with_key, settings, auth)).sub == f"apikey:{key_id}"
    token = issue_token(settings, sub="user-1", role="user")
    with_jwt = make_mocked_request("GET", "/", headers={"Authorization": f"Bearer {token}"})
    assert await authenticate(with_jwt, settings, auth) == Caller(sub="user-1", role="user", mode="live")
    with pytest.raises(ApiError) as err:
        await authenticate(make_mocked_request("GET", "/"), settings, auth)
    assert err.value.code == "UNAUTHORIZED"
    await auth.flush()


def test_only_an_admin_signed_in_with_a_jwt_manages_keys_and_webhooks():
    require_key_manager(Caller(sub="admin-1", role="admin"))
    for caller in (
        Caller(sub="apikey:1", role="service"),
        Caller(sub="apikey:1", role="admin"),  # not a role a key can have, and refused all the same
        Caller(sub="svc", role="service"),
        Caller(sub="u", role="user"),
    ):
        with pytest.raises(ApiError) as err:
            require_key_manager(caller)
        assert err.value.code == "FORBIDDEN"
