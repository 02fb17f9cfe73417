"""Who may touch what, through the gateway (port 8000), on the real services.

Object-level checks (OWASP API1): every endpoint that takes an id is called with a user token on
another user's object and must answer 404 or 403 without the object's content, and must leave the
object as it was. Function-level checks (API5): user, service and admin tokens against the writes
reserved to the latter. Then the token itself: forged algorithms, missing or wrong claims, expiry
around the leeway, a future ``iat``, and a token in the query string instead of the header.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import JWT_SECRET
from web.common.auth import LEEWAY_S

ENVELOPE = {"success", "data", "error", "message", "meta"}


async def envelope(resp, *statuses: int) -> dict:
    text = await resp.text()
    assert resp.status in statuses, (resp.status, text)
    body = json.loads(text)
    assert set(body) == ENVELOPE, body
    if resp.status >= 400:
        assert body["success"] is False and body["data"] is None, body
    assert "Traceback" not in text and "scrypt$" not in text
    return body


def leaks(text: str, obj: dict, *fields: str) -> list[str]:
    """Which of ``obj``'s identifying values show up in a response text."""
    return [f for f in fields if obj.get(f) and str(obj[f]) in text]


@pytest.fixture
async def world(stack):
    """Two plain users, a template, and one notification of the victim's."""
    victim = await stack.create_user(name="Victoria Victim", push_token="tok_" + uuid.uuid4().hex * 3)
    mallory = await stack.create_user(name="Mallory")
    template = await stack.create_template()
    resp = await stack.send(
        notification_type="email",
        user_id=victim["id"],
        template_code=template["code"],
        variables={"name": "V", "link": "https://example.com"},
        request_id=uuid.uuid4().hex,
    )
    assert resp.status == 202, await resp.text()
    nid = (await resp.json())["data"]["notification_id"]
    return stack, victim, mallory, template, nid


async def admin_view(stack, path: str) -> dict:
    resp = await stack.client.get(path, headers=stack.auth())
    return (await envelope(resp, 200))["data"]


# --- object level ----------------------------------------------------------------------------


async def test_user_token_cannot_reach_another_users_objects(world):
    stack, victim, mallory, _, nid = world
    token = stack.auth(stack.token(mallory["id"]))
    vid = victim["id"]
    cases = [
        ("GET", f"/api/v1/users/{vid}", None),
        ("GET", f"/api/v1/users/{vid}/", None),
        ("PATCH", f"/api/v1/users/{vid}", {"name": "Owned"}),
        ("PATCH", f"/api/v1/users/{vid}", {"email": f"owned-{uuid.uuid4().hex[:6]}@example.com"}),
        ("PATCH", f"/api/v1/users/{vid}", {"password": "new-password-123"}),
        ("PATCH", f"/api/v1/users/{vid}", {"push_token": None}),
        ("PATCH", f"/api/v1/users/{vid}", {"preferences": {"email": False}}),
        ("DELETE", f"/api/v1/users/{vid}", None),
        ("DELETE", f"/api/v1/users/{vid.upper()}", None),  # the same UUID spelled otherwise
        ("GET", f"/api/v1/notifications/{nid}", None),
        ("GET", f"/api/v1/notifications/{nid}/", None),
        ("GET", f"/api/v1/notifications/{nid.upper()}", None),
        ("GET", f"/api/v1/notifications/?user_id={vid}", None),
        ("GET", f"/api/v1/notifications?user_id={vid.upper()}", None),
        ("GET", "/api/v1/users/", None),
        ("GET", "/api/v1/users?limit=100", None),
    ]
    for method, path, body in cases:
        resp = await stack.client.request(method, path, json=body, headers=token)
        text = await resp.text()
        data = await envelope(resp, 403, 404)
        assert data["error"] in ("FORBIDDEN", "NOT_FOUND"), (method, path, data)
        assert not leaks(text, victim, "email", "name", "push_token"), (method, path, text)
        assert nid not in text or path.endswith(nid) or path.endswith(nid + "/"), (method, path, text)
    # a repeated parameter (HTTP parameter pollution) is read as the caller's own, never the victim's
    for query in (f"user_id={mallory['id']}&user_id={vid}", f"user_id={vid}&user_id={mallory['id']}"):
        resp = await stack.client.get(f"/api/v1/notifications?{query}", headers=token)
        text = await resp.text()
        body = await envelope(resp, 200, 403, 404)
        assert nid not in text and (resp.status != 200 or body["meta"]["total"] == 0), (query, text)
    # nothing changed
    after = await admin_view(stack, f"/api/v1/users/{vid}")
    assert {k: after[k] for k in ("name", "email", "push_token", "preferences", "role", "is_active")} == {
        k: victim[k] for k in ("name", "email", "push_token", "preferences", "role", "is_active")
    }
    login = await stack.client.post(
        "/api/v1/auth/login", json={"email": victim["email"], "password": "correct-horse-1"}
    )
    assert login.status == 200
    # the victim's own listing is unaffected; mallory's own listing sees nothing of it
    mine = await stack.client.get("/api/v1/notifications/", headers=token)
    assert nid not in await mine.text() and (await envelope(mine, 200))["meta"]["total"] == 0


async def test_another_users_object_is_indistinguishable_from_a_missing_one(world):
    stack, victim, mallory, _, nid = world
    token = stack.auth(stack.token(mallory["id"]))
    for existing, missing in (
        (f"/api/v1/users/{victim['id']}", f"/api/v1/users/{uuid.uuid4()}"),
        (f"/api/v1/notifications/{nid}", f"/api/v1/notifications/{uuid.uuid4()}"),
    ):
        a = await envelope(await stack.client.get(existing, headers=token), 403, 404)
        b = await envelope(await stack.client.get(missing, headers=token), 403, 404)
        assert (a["error"], a["message"]) == (b["error"], b["message"]), (existing, a, b)


async def test_receipts_are_for_service_and_admin_only(world):
    stack, victim, mallory, _, nid = world
    receipt = {"notification_id": nid, "status": "failed", "error": "forged bounce"}
    for who in (stack.token(mallory["id"]), stack.token(victim["id"])):  # even the owner
        for path in ("/api/v1/email/status/", "/api/v1/email/status", "/api/v1/push/status/"):
            resp = await stack.client.post(path, json=receipt, headers=stack.auth(who))
            body = await envelope(resp, 403)
            assert body["error"] == "FORBIDDEN" and "forged" not in await resp.text()
    resp = await stack.client.post("/api/v1/email/status/", json=receipt)
    assert (await envelope(resp, 401))["error"] == "UNAUTHORIZED"
    note = await admin_view(stack, f"/api/v1/notifications/{nid}")
    assert note["status"] == "pending" and note["error"] is None
    # a service token may record it (README, "Access": service or admin)
    service = stack.auth(stack.token("email-provider-hook", "service"))
    resp = await stack.client.post("/api/v1/email/status/", json={**receipt, "error": "550 bounce"}, headers=service)
    assert (await envelope(resp, 200))["data"]["status"] == "failed"


async def test_template_writes_need_service_or_admin(world):
    stack, victim, _, template, _ = world
    user = stack.auth(stack.token(victim["id"]))
    code = template["code"]
    writes = [
        ("POST", "/api/v1/templates/", {"code": "evil-" + uuid.uuid4().hex[:6], "name": "x", "content": "x"}),
        ("POST", "/api/v1/templates", {"code": "evil-" + uuid.uuid4().hex[:6], "name": "x", "content": "x"}),
        ("PUT", f"/api/v1/templates/{code}", {"content": "<p>phish {{ name }}</p>"}),
        ("PUT", f"/api/v1/templates/{code}/", {"subject": "Reset your password"}),
        ("PUT", f"/api/v1/templates/{code}", {"is_active": False}),
    ]
    for method, path, body in writes:
        resp = await stack.client.request(method, path, json=body, headers=user)
        assert (await envelope(resp, 403))["error"] == "FORBIDDEN", (method, path)
    current = await admin_view(stack, f"/api/v1/templates/{code}")
    assert current["version"] == 1 and current["content"] == template["content"] and current["is_active"]
    listing = await stack.client.get("/api/v1/templates/?limit=100", headers=stack.auth())
    assert "evil-" not in await listing.text()
    # reads stay open to a user token; writes work for service and admin
    assert (await stack.client.get(f"/api/v1/templates/{code}", headers=user)).status == 200
    service = stack.auth(stack.token("marketing-backend", "service"))
    resp = await stack.client.put(f"/api/v1/templates/{code}", json={"name": "Renamed"}, headers=service)
    assert (await envelope(resp, 200))["data"]["version"] == 2


async def test_dead_letter_endpoints_are_admin_only_when_served(world):
    stack, victim, _, _, nid = world
    app = stack.client.server.app
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    paths = [(m, p) for m, p in served if p.startswith("/api/v1/dead-letters")]
    if not paths:
        pytest.skip("no /api/v1/dead-letters route is served yet")
    for method, canonical in sorted(paths):
        path = canonical.replace("{notification_id}", nid)
        for token, status, code in (
            (None, 401, "UNAUTHORIZED"),
            (stack.token(victim["id"]), 403, "FORBIDDEN"),
            (stack.token(victim["id"], "service"), 403, "FORBIDDEN"),
        ):
            headers = {} if token is None else stack.auth(token)
            resp = await stack.client.request(method, path, headers=headers, json={} if method == "POST" else None)
            body = await envelope(resp, status)
            assert body["error"] == code, (method, path, token and "token", body)
    # the notification was not touched by the refused replays
    assert (await admin_view(stack, f"/api/v1/notifications/{nid}"))["status"] == "pending"


# --- function level: escalation --------------------------------------------------------------


async def test_user_cannot_escalate_or_reactivate_itself(world):
    stack, victim, _, _, _ = world
    me = stack.auth(stack.token(victim["id"]))
    path = f"/api/v1/users/{victim['id']}"
    for body in (
        {"role": "admin"},
        {"role": "service"},
        {"role": "user"},
        {"is_active": True},
        {"is_active": False},
        {"name": "Still me", "role": "admin"},
        {"preferences": {"email": True}, "is_active": True},
    ):
        resp = await stack.client.patch(path, json=body, headers=me)
        assert (await envelope(resp, 403))["error"] == "FORBIDDEN", body
    # fields no one may set by PATCH (mass assignment)
    for body in (
        {"id": str(uuid.uuid4())},
        {"password_hash": "scrypt$x"},
        {"created_at": "2000-01-01"},
        {"ROLE": "admin"},
        {"role ": "admin"},
    ):
        resp = await stack.client.patch(path, json=body, headers=me)
        assert (await envelope(resp, 400))["error"] == "VALIDATION_ERROR", body
    after = await admin_view(stack, path)
    assert after["role"] == "user" and after["is_active"] is True and after["name"] == victim["name"]
    # a fresh login still yields a user token
    resp = await stack.client.post("/api/v1/auth/login", json={"email": victim["email"], "password": "correct-horse-1"})
    token = (await envelope(resp, 200))["data"]["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["role"] == "user"
    # registration cannot choose a role without an admin token
    for headers in ({}, me, stack.auth(stack.token("svc", "service"))):
        resp = await stack.client.post(
            "/api/v1/users/",
            headers=headers,
            json={
                "name": "Climber",
                "email": f"c-{uuid.uuid4().hex[:6]}@example.com",
                "password": "long-enough-1",
                "role": "admin",
            },
        )
        assert (await envelope(resp, 403))["error"] == "FORBIDDEN"


async def test_service_and_admin_differ_only_where_the_contract_says(world):
    stack, victim, _, _, nid = world
    service = stack.auth(stack.token("billing", "service"))
    path = f"/api/v1/users/{victim['id']}"
    # service: any user's profile and notifications, the user list, profile edits ...
    assert (await envelope(await stack.client.get(path, headers=service), 200))["data"]["id"] == victim["id"]
    assert (await stack.client.get("/api/v1/users/", headers=service)).status == 200
    assert (await stack.client.get(f"/api/v1/notifications/{nid}", headers=service)).status == 200
    resp = await stack.client.patch(path, json={"name": "Renamed by service"}, headers=service)
    assert (await envelope(resp, 200))["data"]["name"] == "Renamed by service"
    # ... but not role or activation changes: admin only
    for body in ({"role": "admin"}, {"is_active": False}):
        resp = await stack.client.patch(path, json=body, headers=service)
        assert (await envelope(resp, 403))["error"] == "FORBIDDEN", body
    assert (await admin_view(stack, path))["role"] == "user"
    resp = await stack.client.patch(path, json={"role": "service"}, headers=stack.auth())
    assert (await envelope(resp, 200))["data"]["role"] == "service"


# --- the token itself --------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**over) -> dict:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iss": "herald",
        "aud": "herald-api",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not ...}


def _hs(claims: dict, *, alg: str = "HS256", key: str = JWT_SECRET, header: dict | None = None) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=header)


def _hmac_with_header(claims: dict, header: dict, *, key: bytes = JWT_SECRET.encode()) -> str:
    """A token whose header claims ``header['alg']`` but whose signature is HMAC-SHA256 with ``key``."""
    import hashlib
    import hmac

    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(sig)


def _rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public_pem


def forged_tokens() -> dict[str, str]:
    key, public_pem = _rsa_pair()
    now = int(time.time())
    body = _b64(json.dumps(_claims()).encode())
    return {
        "alg none, no signature": _b64(b'{"alg":"none","typ":"JWT"}') + "." + body + ".",
        "alg None spelled oddly": _b64(b'{"alg":"nOnE"}') + "." + body + ".",
        "HS512 with the right secret": _hs(_claims(), alg="HS512"),
        "HS384 with the right secret": _hs(_claims(), alg="HS384"),
        "RS256 header over an HMAC signature": _hmac_with_header(_claims(), {"alg": "RS256", "typ": "JWT"}),
        "RS256 with an attacker's key": jwt.encode(_claims(), key, algorithm="RS256"),
        "HS256 keyed with an attacker's public key": _hmac_with_header(_claims(), {"alg": "HS256"}, key=public_pem),
        "kid pointing at a file": _hmac_with_header(_claims(), {"alg": "HS256", "kid": "../../../dev/null"}, key=b""),
        "jwk header with an attacker's key": jwt.encode(
            _claims(), key, algorithm="RS256", headers={"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}
        ),
        "no exp": _hs(_claims(exp=...)),
        "no sub": _hs(_claims(sub=...)),
        "no role": _hs(_claims(role=...)),
        "no iat": _hs(_claims(iat=...)),
        "no iss": _hs(_claims(iss=...)),
        "no aud": _hs(_claims(aud=...)),
        "empty sub": _hs(_claims(sub="")),
        "sub not a string": _hs(_claims(sub=12345)),
        "role superuser": _hs(_claims(role="superuser")),
        "role Admin": _hs(_claims(role="Admin")),
        "role list": _hs(_claims(role=["admin"])),
        "wrong aud": _hs(_claims(aud="another-api")),
        "aud list without ours": _hs(_claims(aud=["another-api", "third"])),
        "wrong iss": _hs(_claims(iss="herald.evil.example")),
        "expired beyond leeway": _hs(_claims(iat=now - 3600, exp=now - LEEWAY_S - 5)),
        "iat far in the future": _hs(_claims(iat=now + 10 * 365 * 86400, exp=now + 11 * 365 * 86400)),
        "nbf in the future": _hs(_claims(nbf=now + 3600)),
        "exp not a number": _hs(_claims(exp="tomorrow")),
        "wrong key": _hs(_claims(), key="another-secret-0123456789abcdef-0123456789"),
        "signature stripped": _hs(_claims()).rsplit(".", 1)[0] + ".",
        "payload swapped": _hs(_claims(role="user")).split(".")[0]
        + "."
        + _b64(json.dumps(_claims()).encode())
        + "."
        + _hs(_claims(role="user")).split(".")[2],
    }


ENDPOINTS = [("GET", "/api/v1/notifications/"), ("GET", "/api/v1/users/"), ("GET", "/api/v1/templates/")]


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_forged_and_malformed_tokens_are_401_everywhere(stack):
    for name, token in forged_tokens().items():
        for method, path in ENDPOINTS:
            resp = await stack.client.request(method, path, headers={"Authorization": f"Bearer {token}"})
            body = await envelope(resp, 401)
            assert body["error"] == "UNAUTHORIZED", (name, path)
    # the genuine article works on the same endpoints
    for method, path in ENDPOINTS:
        assert (await stack.client.request(method, path, headers=stack.auth(_hs(_claims())))).status == 200


async def test_expiry_leeway_is_small_and_as_documented(stack):
    now = int(time.time())
    inside = _hs(_claims(iat=now - 60, exp=now - 1))  # within the 5 s leeway
    assert (await stack.client.get("/api/v1/notifications/", headers=stack.auth(inside))).status == 200
    outside = _hs(_claims(iat=now - 60, exp=now - LEEWAY_S - 2))
    assert (await stack.client.get("/api/v1/notifications/", headers=stack.auth(outside))).status == 401


async def test_a_cached_token_stops_working_once_expired(stack, monkeypatch):
    """``_verified`` memoises good tokens: expiry must still be checked on every use."""
    import types

    import web.common.auth as auth

    now = int(time.time())
    token = _hs(_claims(iat=now, exp=now + 60))
    assert (await stack.client.get("/api/v1/notifications/", headers=stack.auth(token))).status == 200
    later = now + 60 + LEEWAY_S + 1
    monkeypatch.setattr(auth, "time", types.SimpleNamespace(time=lambda: later))
    resp = await stack.client.get("/api/v1/notifications/", headers=stack.auth(token))
    assert (await envelope(resp, 401))["error"] == "UNAUTHORIZED"


async def test_token_outside_the_authorization_header_is_ignored(stack):
    token = _hs(_claims())
    for path in ("/api/v1/notifications/", "/api/v1/users/", "/api/v1/templates/"):
        for query in (f"access_token={token}", f"token={token}", f"jwt={token}", f"authorization=Bearer%20{token}"):
            resp = await stack.client.get(f"{path}?{query}")
            assert (await envelope(resp, 401))["error"] == "UNAUTHORIZED", (path, query)
        for headers in (
            {"Cookie": f"access_token={token}"},
            {"X-Access-Token": token},
            {"Authorization": token},
            {"Authorization": f"Basic {token}"},
            {"Authorization": f"Token {token}"},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer {token}.{token}"},
        ):
            resp = await stack.client.get(path, headers=headers)
            assert (await envelope(resp, 401))["error"] == "UNAUTHORIZED", (path, headers)
