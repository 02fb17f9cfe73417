"""The OpenAPI document: valid (openapi-spec-validator), true to the routes served and to the facts
clients rely on, and served itself with its interactive page (Swagger UI, offline)."""

from __future__ import annotations

import asyncio
import copy
import json
import re

import msgspec
import pytest
from openapi_spec_validator import validate

from web.common.envelope import STATUS_OF
from web.console.pages import PREFIX as CONSOLE
from web.gateway import reference
from web.gateway import routes as gateway_routes
from web.gateway.app import create_app as create_gateway
from web.gateway.app_keys import publisher_key
from web.gateway.reference import document
from web.templates.app import create_app as create_templates
from web.users.app import create_app as create_users

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: The error codes of the README's envelope, every one of which a client may meet.
CONTRACT_ERROR_CODES = {
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "IDEMPOTENCY_CONFLICT",
    "PREFERENCE_DISABLED",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "PAYLOAD_TOO_LARGE",
    "INTERNAL_ERROR",
}
#: Operations a client may call without a token (registration takes one optionally).
OPEN = {
    ("post", "/api/v1/auth/login"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
}
NOT_ENVELOPED = {"/metrics", "/openapi.json", "/docs"}


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def body_schema(doc, op) -> dict:
    """The request body's object schema (behind the ``allOf`` a constrained body is wrapped in)."""
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    return resolve(doc, schema["allOf"][0] if "allOf" in schema else schema)


# --- the document -------------------------------------------------------------------------------


def test_document_is_a_valid_openapi_3_0_document():
    doc = document()
    assert doc["openapi"] == "3.0.3", "Swagger UI 4 (swagger-ui-bundle) renders 3.0 only"
    validate(doc)
    assert json.loads(json.dumps(doc)) == doc
    assert document() is doc, "built once and cached"


def test_the_cached_document_is_not_altered_by_readers():
    before = copy.deepcopy(document())
    reference.document_json()
    assert document() == before


def test_every_operation_takes_and_answers_the_correlation_id():
    doc = document()
    for path, method, op in operations(doc):
        assert {"$ref": "#/components/parameters/CorrelationId"} in op["parameters"], f"{method} {path}"
        for status, response in op["responses"].items():
            assert "X-Correlation-ID" in resolve(doc, response)["headers"], f"{method} {path} {status}"
    header = doc["components"]["headers"]["X-Correlation-ID"]
    assert header["required"] is True and header["schema"]["pattern"].startswith("^[A-Za-z0-9._:\\-]{1,128}$")


def test_a_malformed_correlation_id_is_documented_as_replaced_not_refused():
    param = document()["components"]["parameters"]["CorrelationId"]
    assert param["in"] == "header" and param["name"] == "X-Correlation-ID" and param["required"] is False
    assert param["schema"] == {"type": "string"}, "any value is accepted, so the schema may not restrict it"
    assert "not refused" in param["description"] and "replaced by a new UUID" in param["description"]


def test_envelope_error_codes_pagination_and_security():
    doc = document()
    schemas = doc["components"]["schemas"]
    fields = {"success", "data", "error", "message", "meta"}
    assert set(schemas["Error"]["required"]) == fields
    assert CONTRACT_ERROR_CODES <= set(schemas["Error"]["properties"]["error"]["enum"]) == set(STATUS_OF)
    assert set(schemas["PaginationMeta"]["required"]) == {
        "total",
        "limit",
        "page",
        "total_pages",
        "has_next",
        "has_previous",
    }
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["bearerFormat"] == "JWT"
    assert "HS256" in scheme["description"]
    for path, method, op in operations(doc):
        if (method, path) in OPEN:
            assert op["security"] == [], f"{method} {path} needs no token"
        elif (method, path) == ("post", "/api/v1/users/"):
            assert op["security"] == [{}, {"bearerAuth": []}], "registration: token optional"
            assert {"401", "403"} <= set(op["responses"])
        else:
            assert op["security"] == [{"bearerAuth": []}], f"{method} {path}"
            assert "401" in op["responses"], f"{method} {path}"
        assert "500" in op["responses"], f"{method} {path}"
        if path not in NOT_ENVELOPED:
            ok = next(r for s, r in op["responses"].items() if s.startswith("2"))
            envelope = ok["content"]["application/json"]["schema"]
            assert set(envelope["required"]) == fields and "503" in op["responses"], f"{method} {path}"


def test_every_answer_a_declaration_implies_is_documented():
    """Bodies: 400 and 413 (over 1 MiB) and no unknown field; path ids: 404 for one that cannot exist;
    lists: the pagination in ``meta`` and ``page``/``limit`` in the query."""
    doc = document()
    for path, method, op in operations(doc):
        where = f"{method} {path}"
        if "requestBody" in op:
            assert {"400", "413"} <= set(op["responses"]), where
            assert body_schema(doc, op)["additionalProperties"] is False, where
        if "{" in path:
            assert "404" in op["responses"], where
            params = {p["name"] for p in op["parameters"] if p.get("in") == "path"}
            assert params == set(re.findall(r"\{(\w+)\}", path)), where
        data = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if data.get("properties", {}).get("data", {}).get("type") == "array":
            assert data["properties"]["meta"] == {"$ref": "#/components/schemas/PaginationMeta"}, where
            names = {p["name"] for p in op["parameters"] if p.get("in") == "query"}
            assert {"page", "limit"} <= names, where


def test_send_documents_every_answer_of_the_contract():
    doc = document()
    send = doc["paths"]["/api/v1/notifications/"]["post"]
    responses = {status: resolve(doc, r) for status, r in send["responses"].items()}
    assert {"200", "202", "400", "401", "403", "404", "409", "413", "429", "503"} <= set(responses)
    assert "Idempotent-Replayed" in responses["200"]["headers"]
    assert "Idempotent-Replayed" not in responses["202"]["headers"]
    assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]
    assert "PREFERENCE_DISABLED" in responses["400"]["description"]
    assert "IDEMPOTENCY_CONFLICT" in responses["409"]["description"]
    body = body_schema(doc, send)
    assert set(body["required"]) == {"notification_type", "user_id", "template_code", "request_id"}
    props = body["properties"]
    priority = props["priority"]
    assert priority["minimum"] == 1 and priority["maximum"] == 10 and priority["default"] == 5
    assert props["request_id"]["minLength"] == 1 and props["request_id"]["maxLength"] == 128
    assert props["notification_type"]["enum"] == ["email", "push"]
    assert props["user_id"]["format"] == "uuid"
    assert props["variables"]["default"] == {} and props["metadata"]["default"] == {}


@pytest.mark.parametrize("operation_id", ["sendNotification", "login", "createUser", "createTemplate"])
def test_main_operations_have_examples_the_code_accepts(operation_id):
    (op,) = [op for op in reference.all_operations() if op.operation_id == operation_id]
    ((path, method, entry),) = [(p, m, e) for p, m, e in operations(document()) if e["operationId"] == operation_id]
    examples = entry["requestBody"]["content"]["application/json"]["examples"]
    assert examples, f"{method} {path}"
    for example in examples.values():
        msgspec.json.decode(json.dumps(example["value"]).encode(), type=op.body)


# --- the document against the routes served ---------------------------------------------------


def normalise(path: str) -> str:
    """Trailing slash and parameter names (and regexes) do not make a different operation."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def served(app):
    """(method, normalised path) of an app's routes, without aiohttp's automatic HEAD and the
    Swagger UI's own files, nor the operator console's pages (HTML for people under /admin)."""
    return {
        (route.method, normalise(route.resource.canonical))
        for route in app.router.routes()
        if route.method not in ("HEAD", "*") and not route.resource.canonical.startswith(("/docs/", CONSOLE))
    }


def test_document_covers_exactly_the_routes_served_through_the_gateway(settings):
    gateway, users, templates = create_gateway(settings), create_users(settings), create_templates(settings)
    catch_all = {route.resource.canonical for route in gateway.router.routes() if route.method == "*"}
    prefixes = {canonical.removesuffix("{tail}") for canonical in catch_all}
    assert prefixes == {prefix for prefix, _ in gateway_routes.FORWARDED}, "the only catch-alls are forwarders"
    own = served(gateway)
    behind = served(users) | served(templates)
    for method, path in behind:
        assert (method, path) in own or path.startswith(tuple(prefixes)), (
            f"{method} {path} is served by a service but the gateway neither serves nor forwards it"
        )
    reachable = own | {(m, p) for m, p in behind if p.startswith(tuple(prefixes))}
    documented = {(method.upper(), normalise(path)) for path, method, _ in operations(document())}
    assert sorted(reachable - documented) == [], "served but not documented"
    assert sorted(documented - reachable) == [], "documented but not served"
    assert ("POST", "/api/v1/{}/status") in documented and ("POST", "/api/v1/auth/login") in documented


def test_collections_are_written_with_and_items_without_trailing_slash():
    paths = set(document()["paths"])
    assert {"/api/v1/notifications/", "/api/v1/users/", "/api/v1/templates/"} <= paths
    for path in paths:
        if path.endswith("/"):
            assert not path.endswith("}/"), path


# --- served by the gateway ----------------------------------------------------------------------


@pytest.fixture
async def client(aiohttp_client, settings):
    app = create_gateway(settings)
    client = await aiohttp_client(app)
    yield client
    # The publisher declares the topology in a thread at start; closing the app while that thread
    # is still at work races inside pika, so let it finish first (it takes well under a second).
    publisher = app[publisher_key]
    for _ in range(100):
        if publisher.ready:
            break
        await asyncio.sleep(0.1)


async def test_openapi_json_is_served_plain(client):
    resp = await client.get("/openapi.json", headers={"X-Correlation-ID": "docs-test-1"})
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["X-Correlation-ID"] == "docs-test-1"
    body = json.loads(await resp.text())
    assert body["openapi"] == "3.0.3" and "success" not in body
    assert body == document()
    assert (await client.get("/openapi.json/")).status == 200


async def test_docs_is_swagger_ui_served_offline_under_a_strict_policy(client):
    resp = await client.get("/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    policy = resp.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", policy)[1]
    assert script_src == "'self'", "no inline or foreign script"
    assert "connect-src 'self'" in policy and "default-src 'none'" in policy
    html = await resp.text()
    assert 'id="swagger-ui"' in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/' in attrs and not body.strip() for attrs, body in scripts), "no inline script"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        got = await client.get(asset)
        assert got.status == 200, asset
    assert (await client.get("/docs/static/swagger-ui-bundle.js")).content_type == "application/javascript"
    init = await client.get("/docs/init.js")
    assert init.content_type == "application/javascript"
    script = await init.text()
    assert 'url: "/openapi.json"' in script and "persistAuthorization: true" in script
    assert "validatorUrl: null" in script
    assert "http://" not in script and "https://" not in script
    assert (await client.get("/docs/")).status == 200
