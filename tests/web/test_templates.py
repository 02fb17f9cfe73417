"""The template service over HTTP, on real PostgreSQL and Redis (a database and key prefix per test)."""

from __future__ import annotations

import asyncio
import json
import time
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from models.redis_keys import TEMPLATE_TTL_S, RedisKeys
from tests.support import resources
from web.common.auth import issue_token
from web.templates.app import create_app

BASE = "/api/v1/templates"
ENVELOPE = {"success", "data", "error", "message", "meta"}


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


def bearer(settings, role: str, sub: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, sub=sub or str(uuid4()), role=role)}"}


admin = pytest.fixture(lambda settings: bearer(settings, "admin"), name="admin")
user = pytest.fixture(lambda settings: bearer(settings, "user"), name="user")


@pytest.fixture
async def cache():
    client = aioredis.Redis.from_url(resources.REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def call(client, method: str, path: str, *, status: int, headers=None, **kwargs) -> dict:
    resp = await client.request(method, path, headers=headers, **kwargs)
    body = await resp.json()
    assert set(body) == ENVELOPE and resp.status == status, body
    assert body["success"] is (status < 400) and isinstance(body["message"], str), body
    assert (body["error"] is None) if status < 400 else body["error"].isupper(), body
    return body


def template_body(**overrides) -> dict:
    return {
        "code": "welcome",
        "name": "Welcome",
        "subject": "Hello {{ name }}",
        "content": "<p>Hi {{ name }}</p>",
        "language": "en",
        **overrides,
    }


async def create(client, headers, *, status: int = 201, **overrides) -> dict:
    return await call(client, "POST", f"{BASE}/", status=status, headers=headers, json=template_body(**overrides))


# --- create ---------------------------------------------------------------------------------


async def test_create_returns_the_template_object(client, admin):
    body = await create(client, admin, description="first")
    data = body["data"]
    assert set(data) == {
        "id",
        "code",
        "name",
        "description",
        "subject",
        "content",
        "language",
        "version",
        "is_active",
        "created_at",
        "updated_at",
    }
    assert data["code"] == "welcome" and data["language"] == "en" and data["version"] == 1
    assert data["is_active"] is True and data["description"] == "first"
    assert data["subject"] == "Hello {{ name }}" and data["created_at"].endswith("Z")
    body = template_body(code="no-language")
    del body["language"]
    created = await call(client, "POST", BASE, status=201, headers=admin, json=body)
    assert created["data"]["language"] == "en"


async def test_duplicate_code_and_language_is_409_but_another_language_is_fine(client, admin):
    await create(client, admin)
    dup = await create(client, admin, status=409, name="Other")
    assert dup["error"] == "CONFLICT"
    other = await create(client, admin, language="fr")
    assert other["data"]["language"] == "fr"


async def test_user_token_may_not_write(client, admin, user):
    denied = await create(client, user, status=403)
    assert denied["error"] == "FORBIDDEN"
    await create(client, admin)
    denied = await call(client, "PUT", f"{BASE}/welcome", status=403, headers=user, json={"name": "x"})
    assert denied["error"] == "FORBIDDEN"


async def test_history_records_the_creator_when_it_is_a_user_id(client, settings):
    sub = str(uuid4())
    await create(client, bearer(settings, "admin", sub=sub))
    await create(client, bearer(settings, "service", sub="gateway"), code="by-service")
    reader = bearer(settings, "user")
    by_admin = await call(client, "GET", f"{BASE}/welcome/versions", status=200, headers=reader)
    assert by_admin["data"][0]["created_by"] == sub
    by_service = await call(client, "GET", f"{BASE}/by-service/versions", status=200, headers=reader)
    assert by_service["data"][0]["created_by"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", BASE),
        ("GET", BASE),
        ("GET", f"{BASE}/welcome"),
        ("PUT", f"{BASE}/welcome"),
        ("GET", f"{BASE}/welcome/versions"),
        ("POST", f"{BASE}/welcome/render"),
    ],
)
async def test_every_endpoint_needs_a_valid_token(client, method, path):
    for headers in (None, {"Authorization": "Bearer nope"}):
        body = await call(client, method, path, status=401, json={}, headers=headers)
        assert body["error"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps(template_body(content=5)), "content"),
        (json.dumps(template_body(name=["x"])), "name"),
        (json.dumps(template_body(surprise=True)), "surprise"),
        (json.dumps(template_body(subject="Hello\r\nBcc: victim@example.com")), "subject"),
        (json.dumps(template_body(subject="Hello\nthere")), "subject"),
        (json.dumps(template_body(subject="x" * 999)), "subject"),
        (json.dumps(template_body(code="Bad Code")), "code"),
        (json.dumps(template_body(code="")), "code"),
        (json.dumps(template_body(language="english")), "language"),
        (json.dumps(template_body(language=3)), "language"),
        (json.dumps(template_body(content="")), "content"),
        (json.dumps(template_body(content="x" * 100_001)), "content"),
        (json.dumps({k: v for k, v in template_body().items() if k != "content"}), "content"),
        (json.dumps({k: v for k, v in template_body().items() if k != "name"}), "name"),
    ],
)
async def test_invalid_create_bodies_are_400(client, admin, payload, needle):
    body = await call(
        client, "POST", BASE, status=400, headers={**admin, "Content-Type": "application/json"}, data=payload
    )
    assert body["error"] == "VALIDATION_ERROR"
    assert needle in body["message"]


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ("content", "<p>{{ name </p>"),
        ("content", "{% for x in y %}never closed"),
        ("subject", "Hi {{ name"),
    ],
)
async def test_template_syntax_errors_are_400(client, admin, field, source):
    body = await create(client, admin, status=400, **{field: source})
    assert body["error"] == "VALIDATION_ERROR"
    assert field in body["message"] and "syntax" in body["message"]
    listed = await call(client, "GET", BASE, status=200, headers=admin)
    assert listed["data"] == []


# --- read -----------------------------------------------------------------------------------


async def test_get_exact_language_and_fallback_to_en(client, admin, user):
    await create(client, admin, content="<p>Hello</p>")
    await create(client, admin, language="fr", content="<p>Bonjour</p>")
    fr = await call(client, "GET", f"{BASE}/welcome?language=fr", status=200, headers=user)
    assert fr["data"]["language"] == "fr" and fr["data"]["content"] == "<p>Bonjour</p>"
    de = await call(client, "GET", f"{BASE}/welcome?language=de", status=200, headers=user)
    assert de["data"]["language"] == "en" and de["data"]["content"] == "<p>Hello</p>"
    default = await call(client, "GET", f"{BASE}/welcome", status=200, headers=user)
    assert default["data"]["language"] == "en"
    bad = await call(client, "GET", f"{BASE}/welcome?language=xx_YY!", status=400, headers=user)
    assert bad["error"] == "VALIDATION_ERROR"


async def test_unknown_template_is_404(client, admin, user):
    body = await call(client, "GET", f"{BASE}/nope", status=404, headers=user)
    assert body["error"] == "NOT_FOUND"
    await create(client, admin, code="only-fr", language="fr")
    body = await call(client, "GET", f"{BASE}/only-fr?language=de", status=404, headers=user)
    assert body["error"] == "NOT_FOUND"
    body = await call(client, "GET", f"{BASE}/Not%20A%20Code", status=404, headers=user)
    assert body["error"] == "NOT_FOUND"


async def test_list_is_paginated_and_filtered(client, admin, user):
    for code in ("a-one", "b-two", "c-three"):
        await create(client, admin, code=code)
    await create(client, admin, code="a-one", language="fr")
    page = await call(client, "GET", f"{BASE}/?page=1&limit=2", status=200, headers=user)
    assert [t["code"] for t in page["data"]] == ["a-one", "a-one"]
    assert page["meta"] == {
        "total": 4,
        "limit": 2,
        "page": 1,
        "total_pages": 2,
        "has_next": True,
        "has_previous": False,
    }
    fr = await call(client, "GET", f"{BASE}?language=fr", status=200, headers=user)
    assert [(t["code"], t["language"]) for t in fr["data"]] == [("a-one", "fr")]
    one = await call(client, "GET", f"{BASE}?code=b-two", status=200, headers=user)
    assert [t["code"] for t in one["data"]] == ["b-two"] and one["meta"]["total"] == 1
    bad = await call(client, "GET", f"{BASE}?limit=0", status=400, headers=user)
    assert bad["error"] == "VALIDATION_ERROR"


# --- update and history ---------------------------------------------------------------------


async def test_put_bumps_the_version_and_keeps_the_old_one(client, admin, user):
    created = await create(client, admin, content="<p>v1 {{ name }}</p>")
    updated = await call(
        client,
        "PUT",
        f"{BASE}/welcome",
        status=200,
        headers=admin,
        json={"content": "<p>v2 {{ name }}</p>", "subject": "New {{ name }}"},
    )
    data = updated["data"]
    assert data["version"] == 2 and data["content"] == "<p>v2 {{ name }}</p>"
    assert data["subject"] == "New {{ name }}" and data["name"] == "Welcome"
    assert data["id"] == created["data"]["id"] and data["updated_at"] >= created["data"]["updated_at"]
    versions = await call(client, "GET", f"{BASE}/welcome/versions", status=200, headers=user)
    assert [v["version"] for v in versions["data"]] == [2, 1]
    assert versions["data"][1]["content"] == "<p>v1 {{ name }}</p>"
    assert versions["data"][1]["subject"] == "Hello {{ name }}"
    assert versions["data"][0]["content"] == "<p>v2 {{ name }}</p>"
    assert versions["meta"]["total"] == 2
    current = await call(client, "GET", f"{BASE}/welcome", status=200, headers=user)
    assert current["data"]["version"] == 2


async def test_put_touches_only_its_language(client, admin, user):
    await create(client, admin)
    await create(client, admin, language="fr", content="<p>Bonjour</p>")
    updated = await call(
        client,
        "PUT",
        f"{BASE}/welcome",
        status=200,
        headers=admin,
        json={"language": "fr", "is_active": False, "description": None},
    )
    assert updated["data"]["language"] == "fr" and updated["data"]["version"] == 2
    assert updated["data"]["is_active"] is False and updated["data"]["content"] == "<p>Bonjour</p>"
    en = await call(client, "GET", f"{BASE}/welcome", status=200, headers=user)
    assert en["data"]["version"] == 1 and en["data"]["is_active"] is True


async def test_put_errors(client, admin):
    missing = await call(client, "PUT", f"{BASE}/nope", status=404, headers=admin, json={"name": "x"})
    assert missing["error"] == "NOT_FOUND"
    await create(client, admin)
    other_language = await call(
        client, "PUT", f"{BASE}/welcome", status=404, headers=admin, json={"name": "x", "language": "de"}
    )
    assert other_language["error"] == "NOT_FOUND"
    for payload in ({}, {"code": "other"}, {"is_active": "yes"}, {"content": "{{ broken"}, {"subject": "a\r\nb"}):
        bad = await call(client, "PUT", f"{BASE}/welcome", status=400, headers=admin, json=payload)
        assert bad["error"] == "VALIDATION_ERROR", payload
    versions = await call(client, "GET", f"{BASE}/welcome/versions", status=200, headers=admin)
    assert [v["version"] for v in versions["data"]] == [1]
    absent = await call(client, "GET", f"{BASE}/nope/versions", status=404, headers=admin)
    assert absent["error"] == "NOT_FOUND"


async def test_concurrent_puts_get_distinct_versions(client, admin):
    await create(client, admin)
    results = await asyncio.gather(
        *(client.put(f"{BASE}/welcome", headers=admin, json={"content": f"<p>edit {i}</p>"}) for i in range(8))
    )
    assert sorted(r.status for r in results) == [200] * 8
    new_versions = sorted([(await r.json())["data"]["version"] for r in results])
    assert new_versions == list(range(2, 10))
    history = await call(client, "GET", f"{BASE}/welcome/versions?limit=100", status=200, headers=admin)
    assert [v["version"] for v in history["data"]] == list(range(9, 0, -1))


# --- cache ----------------------------------------------------------------------------------


async def test_get_fills_the_cache_and_put_drops_it(client, admin, user, cache, settings):
    key = RedisKeys(settings.redis_key_prefix).template("welcome", "en")
    await create(client, admin)
    assert await cache.get(key) is None
    got = await call(client, "GET", f"{BASE}/welcome?language=en", status=200, headers=user)
    assert json.loads(await cache.get(key)) == got["data"]
    assert 0 < await cache.ttl(key) <= TEMPLATE_TTL_S
    await call(client, "PUT", f"{BASE}/welcome", status=200, headers=admin, json={"name": "Renamed"})
    assert await cache.get(key) is None
    again = await call(client, "GET", f"{BASE}/welcome", status=200, headers=user)
    assert again["data"]["name"] == "Renamed" and again["data"]["version"] == 2
    assert json.loads(await cache.get(key)) == again["data"]


async def test_cache_is_read_first_and_fallbacks_fill_only_the_real_language(client, admin, user, cache, settings):
    keys = RedisKeys(settings.redis_key_prefix)
    created = await create(client, admin)
    await call(client, "GET", f"{BASE}/welcome?language=de", status=200, headers=user)
    assert await cache.get(keys.template("welcome", "de")) is None
    assert json.loads(await cache.get(keys.template("welcome", "en"))) == created["data"]
    planted = {**created["data"], "name": "from the cache"}
    await cache.set(keys.template("welcome", "en"), json.dumps(planted), ex=60)
    got = await call(client, "GET", f"{BASE}/welcome", status=200, headers=user)
    assert got["data"] == planted


async def test_create_drops_a_stale_cache_entry(client, admin, user, cache, settings):
    key = RedisKeys(settings.redis_key_prefix).template("welcome", "fr")
    await cache.set(key, json.dumps({"code": "welcome", "language": "fr", "stale": True}), ex=60)
    await create(client, admin, language="fr")
    assert await cache.get(key) is None


# --- render ---------------------------------------------------------------------------------


async def test_render_escapes_html_and_derives_text(client, admin, user):
    await create(
        client,
        admin,
        subject="Hi {{ name }} & co",
        content="<h1>Hello {{ name }}</h1><p>Visit <a href='{{ link }}'>here</a></p>",
    )
    body = await call(
        client,
        "POST",
        f"{BASE}/welcome/render",
        status=200,
        headers=user,
        json={"variables": {"name": "<b>x</b>", "link": "https://example.com/?a=1&b=2"}},
    )
    data = body["data"]
    assert set(data) == {"subject", "body", "text", "language", "version"}
    assert "&lt;b&gt;x&lt;/b&gt;" in data["body"] and "<b>x</b>" not in data["body"]
    assert "https://example.com/?a=1&amp;b=2" in data["body"]
    assert data["subject"] == "Hi <b>x</b> & co"
    assert "<" not in data["text"].replace("<b>x</b>", "")
    assert "Hello <b>x</b>" in data["text"] and "Visit here" in data["text"]
    assert data["language"] == "en" and data["version"] == 1


async def test_render_falls_back_to_en_and_names_a_missing_variable(client, admin, user):
    await create(client, admin, content="<p>Hello {{ name }}</p>", subject="Hi {{ first_name }}")
    body = await call(
        client,
        "POST",
        f"{BASE}/welcome/render",
        status=400,
        headers=user,
        json={"variables": {"name": "Ann"}, "language": "de"},
    )
    assert body["error"] == "VALIDATION_ERROR" and "first_name" in body["message"]
    body = await call(
        client,
        "POST",
        f"{BASE}/welcome/render/",
        status=200,
        headers=user,
        json={"variables": {"name": "Ann", "first_name": "A"}, "language": "de"},
    )
    assert body["data"]["language"] == "en" and body["data"]["body"] == "<p>Hello Ann</p>"


async def test_render_request_errors(client, admin, user):
    missing = await call(client, "POST", f"{BASE}/nope/render", status=404, headers=user, json={"variables": {}})
    assert missing["error"] == "NOT_FOUND"
    await create(client, admin)
    for payload in ({"variables": []}, {"variables": {}, "extra": 1}, {"variables": {}, "language": "?"}):
        bad = await call(client, "POST", f"{BASE}/welcome/render", status=400, headers=user, json=payload)
        assert bad["error"] == "VALIDATION_ERROR", payload


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{% set x = [] %}{{ x.append(1) }}",
        "{% include '/etc/passwd' %}",
        "{{ 'a'.encode('no-such-codec') }}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    ],
)
async def test_sandbox_escapes_are_400_without_internals(client, admin, user, source):
    await create(client, admin, content=source, subject="")
    body = await call(client, "POST", f"{BASE}/welcome/render", status=400, headers=user, json={"variables": {}})
    assert body["error"] == "VALIDATION_ERROR"
    for leak in ("Traceback", 'File "', "site-packages", "<class", "/etc/passwd:"):
        assert leak not in body["message"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "range"),
        ("{% for i in range(99999) %}xxxxxxxxxx{% endfor %}", "larger than"),
    ],
)
async def test_huge_loops_and_outputs_are_refused_fast(client, admin, user, source, needle):
    await create(client, admin, content=source, subject="")
    started = time.monotonic()
    body = await call(client, "POST", f"{BASE}/welcome/render", status=400, headers=user, json={"variables": {}})
    assert time.monotonic() - started < 5
    assert body["error"] == "VALIDATION_ERROR" and needle in body["message"].lower()


# --- plumbing -------------------------------------------------------------------------------


async def test_paths_work_with_and_without_trailing_slash(client, admin, user):
    await call(client, "POST", BASE, status=201, headers=admin, json=template_body(code="bare"))
    await call(client, "POST", f"{BASE}/", status=201, headers=admin, json=template_body(code="slash"))
    for path in (BASE, f"{BASE}/"):
        listed = await call(client, "GET", path, status=200, headers=user)
        assert listed["meta"]["total"] == 2
    for path in (f"{BASE}/bare", f"{BASE}/bare/"):
        await call(client, "GET", path, status=200, headers=user)
    await call(client, "PUT", f"{BASE}/bare/", status=200, headers=admin, json={"name": "a"})
    await call(client, "PUT", f"{BASE}/bare", status=200, headers=admin, json={"name": "b"})
    for path in (f"{BASE}/bare/versions", f"{BASE}/bare/versions/"):
        assert len((await call(client, "GET", path, status=200, headers=user))["data"]) == 3
    for path in (f"{BASE}/bare/render", f"{BASE}/bare/render/"):
        await call(client, "POST", path, status=200, headers=user, json={"variables": {"name": "x"}})


async def test_health_and_unknown_method(client, admin):
    for path in ("/health", "/health/"):
        body = await call(client, "GET", path, status=200)
        assert body["data"] == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}
    body = await call(client, "DELETE", f"{BASE}/welcome", status=405, headers=admin)
    assert body["error"] == "METHOD_NOT_ALLOWED"
