"""What the API-key and webhook endpoints do, through the functions their handlers call, on
PostgreSQL: shapes, who may, validation, and the URL checks against server-side request forgery."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from models.base import utcnow
from models.dao import webhook_deliveries
from web.common.app import create_base_app, in_db
from web.common.auth import Caller
from web.common.envelope import ApiError
from web.gateway import api_key_service as keys
from web.gateway import webhook_service as hooks

ADMIN = Caller(sub="admin-1", role="admin")
NOT_MANAGERS = (Caller(sub="apikey:1", role="service"), Caller(sub="svc", role="service"), Caller(sub="u", role="user"))
PUBLIC_URL = "https://93.184.216.34/hooks/herald"  # a literal public address: no DNS needed


async def make_app(aiohttp_client, settings):
    app = create_base_app(
        settings, service="gateway", checks={}, database_urls={"notifications": settings.notifications_database_url}
    )
    await aiohttp_client(app)
    return app


@pytest.fixture
async def app(aiohttp_client, settings):
    return await make_app(aiohttp_client, settings)


async def code_of(call) -> str:
    with pytest.raises(ApiError) as err:
        await call
    return err.value.code


# -- API keys -------------------------------------------------------------------------------------


async def test_a_key_is_created_listed_and_revoked_in_the_contracts_shapes(app):
    made = await keys.create_api_key(app, ADMIN, name="billing", mode="test")
    assert set(made) == {
        "id",
        "name",
        "mode",
        "prefix",
        "key",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    }
    assert made["key"].startswith("hk_test_") and made["prefix"] == made["key"][:12]
    assert made["revoked_at"] is None and made["expires_at"] is None
    items, meta = await keys.list_api_keys(app, ADMIN, page=1, limit=20)
    assert [i["id"] for i in items] == [made["id"]] and "key" not in items[0]
    assert made["key"] not in repr(items) and meta["total"] == 1
    revoked = await keys.revoke_api_key(app, ADMIN, made["id"])
    assert revoked["revoked_at"] is not None and "key" not in revoked
    assert await code_of(keys.revoke_api_key(app, ADMIN, str(uuid.uuid4()))) == "NOT_FOUND"
    assert await code_of(keys.revoke_api_key(app, ADMIN, "not-a-uuid")) == "NOT_FOUND"


async def test_an_expiry_with_a_zone_is_stored_in_utc(app):
    later = dt.datetime.now(dt.timezone(dt.timedelta(hours=2))) + dt.timedelta(days=1)
    made = await keys.create_api_key(app, ADMIN, name="k", expires_at=later)
    assert made["expires_at"] == later.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "x" * 101},
        {"name": "two\nlines"},
        {"name": "k", "mode": "sandbox"},
        {"name": "k", "expires_at": utcnow() - dt.timedelta(seconds=1)},
    ],
)
async def test_bad_key_requests_are_refused(app, fields):
    assert await code_of(keys.create_api_key(app, ADMIN, **fields)) == "VALIDATION_ERROR"


async def test_only_an_admin_jwt_manages_keys(app):
    made = await keys.create_api_key(app, ADMIN, name="k")
    for caller in NOT_MANAGERS:
        assert await code_of(keys.create_api_key(app, caller, name="k")) == "FORBIDDEN"
        assert await code_of(keys.list_api_keys(app, caller, page=1, limit=20)) == "FORBIDDEN"
        assert await code_of(keys.revoke_api_key(app, caller, made["id"])) == "FORBIDDEN"


# -- webhooks -------------------------------------------------------------------------------------


async def test_a_webhook_is_created_read_and_deleted_in_the_contracts_shapes(app):
    made = await hooks.create_webhook(app, ADMIN, url=PUBLIC_URL, description="billing")
    assert set(made) == {"id", "url", "events", "description", "secret", "is_active", "created_at"}
    assert made["secret"].startswith("whsec_") and made["events"] == [
        "notification.delivered",
        "notification.failed",
        "notification.cancelled",
        "notification.expired",
    ]
    assert made["is_active"] is True and made["url"] == PUBLIC_URL
    got = await hooks.get_webhook(app, ADMIN, made["id"])
    items, meta = await hooks.list_webhooks(app, ADMIN, page=1, limit=20)
    assert "secret" not in got and [i["id"] for i in items] == [made["id"]] and meta["total"] == 1
    assert made["secret"] not in repr(got) + repr(items)
    only_failed = await hooks.create_webhook(app, ADMIN, url=PUBLIC_URL, events=["notification.failed"] * 2)
    assert only_failed["events"] == ["notification.failed"]
    deleted = await hooks.delete_webhook(app, ADMIN, made["id"])
    assert deleted["id"] == made["id"] and "secret" not in deleted
    assert await code_of(hooks.get_webhook(app, ADMIN, made["id"])) == "NOT_FOUND"
    assert await code_of(hooks.delete_webhook(app, ADMIN, made["id"])) == "NOT_FOUND"


async def test_deliveries_are_listed_per_webhook_and_go_with_it(app):
    made = await hooks.create_webhook(app, ADMIN, url=PUBLIC_URL)
    event_id = uuid.uuid4()
    rows = [
        {
            "event_id": event_id,
            "webhook": made["id"],
            "event_type": "notification.delivered",
            "notification_id": "n-1",
            "payload": "{}",
        }
    ]
    [delivery] = await in_db(app, webhook_deliveries.create_many, rows)
    items, meta = await hooks.list_deliveries(app, ADMIN, made["id"], page=1, limit=20)
    assert meta["total"] == 1
    assert items == [
        {
            "event_id": str(event_id),
            "event_type": "notification.delivered",
            "notification_id": "n-1",
            "attempts": 0,
            "last_status_code": None,
            "last_error": None,
            "state": "pending",
            "created_at": items[0]["created_at"],
            "updated_at": items[0]["updated_at"],
        }
    ]
    assert await in_db(app, webhook_deliveries.get, str(delivery.id)) is not None
    await hooks.delete_webhook(app, ADMIN, made["id"])
    assert await code_of(hooks.list_deliveries(app, ADMIN, made["id"], page=1, limit=20)) == "NOT_FOUND"
    assert await in_db(app, webhook_deliveries.get, str(delivery.id)) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.216.34/x", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://localhost:9000/hook", "loopback or private"),
        ("http://127.0.0.1:9000/hook", "loopback or private"),
        ("http://10.0.0.8/hook", "loopback or private"),
        ("https://admin:pw@93.184.216.34/", "credentials"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
    ],
)
async def test_urls_herald_must_not_call_are_refused(app, url, why):
    with pytest.raises(ApiError) as err:
        await hooks.create_webhook(app, ADMIN, url=url)
    assert err.value.code == "VALIDATION_ERROR" and why in err.value.message


async def test_private_addresses_are_allowed_only_when_configured(aiohttp_client, settings):
    app = await make_app(aiohttp_client, dataclasses.replace(settings, webhook_allow_private=True))
    made = await hooks.create_webhook(app, ADMIN, url="http://localhost:9000/hook")
    assert made["url"] == "http://localhost:9000/hook"
    # never the metadata address, whatever the setting
    assert await code_of(hooks.create_webhook(app, ADMIN, url="http://169.254.169.254/")) == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "fields",
    [
        {"events": []},
        {"events": ["notification.opened"]},
        {"events": "notification.failed"},
        {"description": "d" * 501},
        {"url": "https://93.184.216.34/" + "a" * 2048},
    ],
)
async def test_bad_webhook_requests_are_refused(app, fields):
    assert await code_of(hooks.create_webhook(app, ADMIN, **{"url": PUBLIC_URL, **fields})) == "VALIDATION_ERROR"


async def test_only_an_admin_jwt_manages_webhooks(app):
    made = await hooks.create_webhook(app, ADMIN, url=PUBLIC_URL)
    for caller in NOT_MANAGERS:
        assert await code_of(hooks.create_webhook(app, caller, url=PUBLIC_URL)) == "FORBIDDEN"
        assert await code_of(hooks.list_webhooks(app, caller, page=1, limit=20)) == "FORBIDDEN"
        assert await code_of(hooks.get_webhook(app, caller, made["id"])) == "FORBIDDEN"
        assert await code_of(hooks.delete_webhook(app, caller, made["id"])) == "FORBIDDEN"
        assert await code_of(hooks.list_deliveries(app, caller, made["id"], page=1, limit=20)) == "FORBIDDEN"
