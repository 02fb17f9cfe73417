"""The user service over HTTP, on the real PostgreSQL and Redis of the machine."""

from __future__ import annotations

import json
import uuid

import psycopg2
import psycopg2.extras
import pytest
import redis

from models.user import User
from web.common.auth import decode_token, issue_token
from web.users.app import create_app

ENVELOPE_KEYS = {"success", "data", "error", "message", "meta"}
USER_KEYS = {"id", "name", "email", "push_token", "preferences", "role", "is_active", "created_at", "updated_at"}
PASSWORD = "correct horse battery"


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def admin(settings):
    return {"Authorization": "Bearer " + issue_token(settings, sub=str(uuid.uuid4()), role="admin")}


@pytest.fixture
def service_token(settings):
    return {"Authorization": "Bearer " + issue_token(settings, sub=str(uuid.uuid4()), role="service")}


@pytest.fixture
def rds(settings):
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def db_user(settings):
    """Read a row straight from PostgreSQL, bypassing the service, its cache and peewee's proxies."""
    conn = psycopg2.connect(settings.users_database_url)
    conn.autocommit = True

    def read(user_id: str) -> dict:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
            return cur.fetchone()

    yield read
    conn.close()


async def envelope(resp, status: int) -> dict:
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == ENVELOPE_KEYS
    assert body["success"] is (status < 400)
    if status >= 400:
        assert body["data"] is None or isinstance(body["data"], dict)
        assert isinstance(body["error"], str) and body["error"].isupper()
    else:
        assert body["error"] is None
    assert isinstance(body["message"], str) and body["message"]
    return body


async def register(client, email: str = "ada@example.com", **extra) -> dict:
    payload = {
        "name": "Ada",
        "email": email,
        "password": PASSWORD,
        "preferences": {"email": True, "push": False},
        **extra,
    }
    resp = await client.post("/api/v1/users/", json=payload)
    return (await envelope(resp, 201))["data"]


def login(client, email: str, password: str = PASSWORD, path: str = "/api/v1/auth/login"):
    return client.post(path, json={"email": email, "password": password})


async def token_of(client, email: str, password: str = PASSWORD) -> dict:
    resp = await login(client, email, password)
    data = (await envelope(resp, 200))["data"]
    return {"Authorization": "Bearer " + data["access_token"]}


async def test_create_user_returns_public_profile(client):
    resp = await client.post(
        "/api/v1/users/",
        json={
            "name": "Ada Lovelace",
            "email": "Ada@Example.COM",
            "password": PASSWORD,
            "push_token": "fcm-token-1",
            "preferences": {"email": True, "push": True, "language": "pt-BR"},
        },
    )
    body = await envelope(resp, 201)
    user = body["data"]
    assert set(user) == USER_KEYS
    assert user["email"] == "ada@example.com"
    assert user["role"] == "user" and user["is_active"] is True
    assert user["push_token"] == "fcm-token-1"
    assert user["preferences"] == {"email": True, "push": True, "language": "pt-BR"}
    uuid.UUID(user["id"])
    assert user["created_at"].endswith("Z")
    raw = await resp.text()
    assert PASSWORD not in raw and "scrypt" not in raw and "hash" not in raw
    assert resp.headers.get("X-Correlation-ID")


async def test_preferences_default_to_on(client):
    resp = await client.post("/api/v1/users/", json={"name": "B", "email": "b@example.com", "password": PASSWORD})
    user = (await envelope(resp, 201))["data"]
    assert user["preferences"] == {"email": True, "push": True}
    assert user["push_token"] is None


async def test_duplicate_email_is_conflict(client):
    await register(client, "dup@example.com")
    resp = await client.post("/api/v1/users/", json={"name": "Other", "email": "DUP@example.com", "password": PASSWORD})
    body = await envelope(resp, 409)
    assert body["error"] == "CONFLICT"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"name": "A", "email": "a@example.com", "password": PASSWORD, "nickname": "x"}, "nickname"),
        ({"name": "A", "email": "a@example.com", "password": "short"}, "password"),
        ({"name": "A", "email": "a@example.com", "password": "x" * 257}, "password"),
        ({"name": 5, "email": "a@example.com", "password": PASSWORD}, "name"),
        ({"name": "A", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"name": "A", "password": PASSWORD}, "email"),
        (
            {"name": "A", "email": "a@example.com", "password": PASSWORD, "preferences": {"email": "yes"}},
            "preferences.email",
        ),
        ({"name": "A", "email": "a@example.com", "password": PASSWORD, "preferences": {"sms": True}}, "sms"),
        (
            {"name": "A", "email": "a@example.com", "password": PASSWORD, "preferences": {"language": "English"}},
            "language",
        ),
        ({"name": "A", "email": "a@example.com", "password": PASSWORD, "preferences": []}, "preferences"),
    ],
)
async def test_create_rejects_invalid_bodies(client, payload, needle):
    body = await envelope(await client.post("/api/v1/users/", json=payload), 400)
    assert body["error"] == "VALIDATION_ERROR"
    assert needle in body["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
async def test_create_rejects_bad_json(client, raw):
    resp = await client.post("/api/v1/users/", data=raw, headers={"Content-Type": "application/json"})
    body = await envelope(resp, 400)
    assert body["error"] == "VALIDATION_ERROR"


async def test_role_at_registration_needs_admin(client, admin):
    payload = {"name": "Root", "email": "root@example.com", "password": PASSWORD, "role": "admin"}
    body = await envelope(await client.post("/api/v1/users/", json=payload), 403)
    assert body["error"] == "FORBIDDEN"
    resp = await client.post("/api/v1/users/", json=payload, headers=admin)
    assert (await envelope(resp, 201))["data"]["role"] == "admin"


async def test_login_issues_a_working_token(client, settings):
    user = await register(client, "login@example.com")
    resp = await client.post("/api/v1/auth/login", json={"email": "LOGIN@example.com", "password": PASSWORD})
    data = (await envelope(resp, 200))["data"]
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == settings.jwt_ttl_s
    caller = decode_token(settings, data["access_token"])
    assert caller.sub == user["id"] and caller.role == "user"

    headers = {"Authorization": "Bearer " + data["access_token"]}
    me = await envelope(await client.get(f"/api/v1/users/{user['id']}", headers=headers), 200)
    assert me["data"]["email"] == "login@example.com"


async def test_login_failures_are_indistinguishable(client, admin):
    user = await register(client, "fail@example.com")
    wrong = await login(client, "fail@example.com", "wrong-pass")
    unknown = await login(client, "nobody@example.com")
    await envelope(await client.delete(f"/api/v1/users/{user['id']}", headers=admin), 200)
    inactive = await login(client, "fail@example.com")
    bodies = [await envelope(r, 401) for r in (wrong, unknown, inactive)]
    assert {b["error"] for b in bodies} == {"UNAUTHORIZED"}
    assert len({b["message"] for b in bodies}) == 1


async def test_login_validates_body(client):
    body = await envelope(await client.post("/api/v1/auth/login", json={"email": "a@example.com"}), 400)
    assert body["error"] == "VALIDATION_ERROR" and "password" in body["message"]


async def test_user_token_cannot_see_others(client):
    ada = await register(client, "ada@example.com")
    bob = await register(client, "bob@example.com")
    headers = await token_of(client, "ada@example.com")
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"name": "Mallory"}} if method == "patch" else {}
        resp = await getattr(client, method)(f"/api/v1/users/{bob['id']}", headers=headers, **kwargs)
        body = await envelope(resp, 404)
        assert body["error"] == "NOT_FOUND" and body["data"] is None
        assert "bob" not in await resp.text()
    missing = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=headers)
    assert (await envelope(missing, 404))["message"] == body["message"]
    assert await envelope(await client.get(f"/api/v1/users/{ada['id']}", headers=headers), 200)


async def test_get_needs_a_token_and_bad_ids_are_not_found(client, admin):
    user = await register(client)
    body = await envelope(await client.get(f"/api/v1/users/{user['id']}"), 401)
    assert body["error"] == "UNAUTHORIZED"
    body = await envelope(await client.get("/api/v1/users/not-a-uuid", headers=admin), 404)
    assert body["error"] == "NOT_FOUND"
    body = await envelope(await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=admin), 404)
    assert body["error"] == "NOT_FOUND"


async def test_list_is_for_admin_and_service(client, admin, service_token):
    await register(client, "u@example.com")
    user_headers = await token_of(client, "u@example.com")
    forbidden = await envelope(await client.get("/api/v1/users/", headers=user_headers), 403)
    assert forbidden["error"] == "FORBIDDEN"
    assert (await envelope(await client.get("/api/v1/users/"), 401))["error"] == "UNAUTHORIZED"
    body = await envelope(await client.get("/api/v1/users/", headers=service_token), 200)
    assert [u["email"] for u in body["data"]] == ["u@example.com"]


async def test_list_pagination(client, admin):
    for i in range(5):
        await register(client, f"p{i}@example.com")
    body = await envelope(await client.get("/api/v1/users/?page=2&limit=2", headers=admin), 200)
    assert body["meta"] == {"total": 5, "limit": 2, "page": 2, "total_pages": 3, "has_next": True, "has_previous": True}
    assert [u["email"] for u in body["data"]] == ["p2@example.com", "p3@example.com"]
    assert all(set(u) == USER_KEYS for u in body["data"])
    last = await envelope(await client.get("/api/v1/users?page=3&limit=2", headers=admin), 200)
    assert last["meta"]["has_next"] is False and len(last["data"]) == 1
    bad = await envelope(await client.get("/api/v1/users/?limit=0", headers=admin), 400)
    assert bad["error"] == "VALIDATION_ERROR"


async def test_user_cannot_change_role(client, db_user):
    user = await register(client, "climber@example.com")
    headers = await token_of(client, "climber@example.com")
    for field, value in (("role", "admin"), ("is_active", True)):
        resp = await client.patch(f"/api/v1/users/{user['id']}", json={field: value}, headers=headers)
        assert (await envelope(resp, 403))["error"] == "FORBIDDEN"
    assert db_user(user["id"])["role"] == "user"


async def test_user_updates_own_profile(client, db_user):
    user = await register(client, "self@example.com", push_token="tok-1")
    headers = await token_of(client, "self@example.com")
    resp = await client.patch(
        f"/api/v1/users/{user['id']}/",
        headers=headers,
        json={
            "name": "Ada L.",
            "push_token": None,
            "preferences": {"push": True, "language": "fr"},
            "password": "a new password",
        },
    )
    data = (await envelope(resp, 200))["data"]
    assert data["name"] == "Ada L." and data["push_token"] is None
    assert data["preferences"] == {"email": True, "push": True, "language": "fr"}
    assert data["updated_at"] >= user["updated_at"]
    await token_of(client, "self@example.com", "a new password")
    await envelope(await login(client, "self@example.com"), 401)
    assert db_user(user["id"])["preferences"] == {"email": True, "push": True, "language": "fr"}


async def test_patch_validation_and_conflict(client, admin):
    await register(client, "taken@example.com")
    user = await register(client, "mine@example.com")
    url = f"/api/v1/users/{user['id']}"
    assert (await envelope(await client.patch(url, json={"email": "TAKEN@example.com"}, headers=admin), 409))[
        "error"
    ] == "CONFLICT"
    body = await envelope(await client.patch(url, json={"colour": "red"}, headers=admin), 400)
    assert "colour" in body["message"]
    body = await envelope(await client.patch(url, json={"role": "root"}, headers=admin), 400)
    assert "role" in body["message"]
    body = await envelope(await client.patch(url, json={}, headers=admin), 400)
    assert body["error"] == "VALIDATION_ERROR"


async def test_admin_changes_role(client, admin, db_user):
    user = await register(client, "promote@example.com")
    resp = await client.patch(f"/api/v1/users/{user['id']}", json={"role": "admin"}, headers=admin)
    assert (await envelope(resp, 200))["data"]["role"] == "admin"
    assert db_user(user["id"])["role"] == "admin"
    headers = await token_of(client, "promote@example.com")
    await envelope(await client.get("/api/v1/users/", headers=headers), 200)


async def test_cache_filled_on_read_and_dropped_on_change(client, admin, rds, settings):
    user = await register(client, "cache@example.com")
    key = f"{settings.redis_key_prefix}user:{user['id']}"
    assert rds.get(key) is None
    got = (await envelope(await client.get(f"/api/v1/users/{user['id']}", headers=admin), 200))["data"]
    cached = rds.get(key)
    assert cached is not None and json.loads(cached) == got == user
    assert 3500 < rds.ttl(key) <= 3600
    assert "hash" not in cached

    resp = await client.patch(f"/api/v1/users/{user['id']}", json={"name": "New"}, headers=admin)
    await envelope(resp, 200)
    assert rds.get(key) is None
    again = (await envelope(await client.get(f"/api/v1/users/{user['id']}", headers=admin), 200))["data"]
    assert again["name"] == "New" and json.loads(rds.get(key))["name"] == "New"

    await envelope(await client.delete(f"/api/v1/users/{user['id']}", headers=admin), 200)
    assert rds.get(key) is None


async def test_cache_is_served_on_hit(client, admin, rds, settings):
    """The cached copy answers without the database; proves reads go through the cache first."""
    user = await register(client, "hit@example.com")
    key = f"{settings.redis_key_prefix}user:{user['id']}"
    rds.set(key, json.dumps({**user, "name": "From cache"}), ex=60)
    got = await envelope(await client.get(f"/api/v1/users/{user['id']}", headers=admin), 200)
    assert got["data"]["name"] == "From cache"


async def test_delete_deactivates(client, db_user):
    user = await register(client, "leaving@example.com")
    headers = await token_of(client, "leaving@example.com")
    resp = await client.delete(f"/api/v1/users/{user['id']}/", headers=headers)
    data = (await envelope(resp, 200))["data"]
    assert data["is_active"] is False and data["id"] == user["id"]
    assert db_user(user["id"])["is_active"] is False
    refused = await login(client, "leaving@example.com", path="/api/v1/auth/login/")
    assert (await envelope(refused, 401))["error"] == "UNAUTHORIZED"


async def test_trailing_slash_both_forms(client, admin):
    no_slash = await client.post("/api/v1/users", json={"name": "N", "email": "n@example.com", "password": PASSWORD})
    user = (await envelope(no_slash, 201))["data"]
    for path in ("/api/v1/users", "/api/v1/users/"):
        await envelope(await client.get(path, headers=admin), 200)
    for path in (f"/api/v1/users/{user['id']}", f"/api/v1/users/{user['id']}/"):
        await envelope(await client.get(path, headers=admin), 200)
        await envelope(await client.patch(path, json={"name": "M"}, headers=admin), 200)
    await token_of(client, "n@example.com")
    await envelope(await login(client, "n@example.com", path="/api/v1/auth/login/"), 200)


async def test_health_reports_postgres_and_redis(client):
    body = await envelope(await client.get("/health"), 200)
    assert body["data"] == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_unknown_route_and_method_use_envelope(client):
    assert (await envelope(await client.get("/api/v1/nothing"), 404))["error"] == "NOT_FOUND"
    assert (await envelope(await client.put("/api/v1/users/", json={}), 405))["error"] == "METHOD_NOT_ALLOWED"


def test_password_hash_never_in_public():
    assert "password_hash" not in User(name="x", email="x@example.com", password_hash="h").public()
