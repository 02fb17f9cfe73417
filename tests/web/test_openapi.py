"""The OpenAPI document: well formed, true to the routes actually served, and served itself.

openapi-spec-validator is not a dependency, so (a) checks the structure a validator would reject
most often: dangling $refs, undeclared path parameters, duplicate operationIds, missing responses.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re

import aiohttp_jinja2
import pytest

from web.common.envelope import STATUS_OF
from web.console.pages import PREFIX as CONSOLE
from web.gateway import routes as gateway_routes
from web.gateway.app import create_app as create_gateway
from web.gateway.app_keys import publisher_key
from web.gateway.docs import setup_docs
from web.gateway.openapi import document
from web.gateway.openapi_schemas import CONTRACT_ERROR_CODES
from web.templates.app import create_app as create_templates
from web.users.app import create_app as create_users

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TYPES = {"string", "integer", "number", "boolean", "array", "object"}
PYTHON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}
#: Operations a client may call without a token (registration takes one optionally).
OPEN = {
    ("post", "/api/v1/auth/login"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
}


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, item, op


def resolve(doc, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/components/"), ref
        node = doc
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
            node = node[part]
        seen += 1
        assert seen < 20, f"$ref cycle at {ref}"
    return node


def walk(node, where="#"):
    """Every (location, dict) in the document, depth first."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}/{i}")


def schemas_in(doc):
    """Every schema object: component schemas, those inline in operations, and all their sub-schemas."""

    def sub(where, schema):
        yield where, schema
        for name, prop in schema.get("properties", {}).items():
            yield from sub(f"{where}/properties/{name}", prop)
        for i, part in enumerate(schema.get("allOf", ())):
            yield from sub(f"{where}/allOf/{i}", part)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                yield from sub(f"{where}/{key}", schema[key])

    for name, schema in doc["components"]["schemas"].items():
        yield from sub(f"#/components/schemas/{name}", schema)
    for where, node in walk(doc):
        if where.endswith("/schema") and not where.startswith("#/components/schemas/"):
            yield from sub(where, node)


# --- (a) structure ------------------------------------------------------------------------------


def test_document_is_openapi_3_0_and_plain_json():
    doc = document()
    assert doc["openapi"] == "3.0.3"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert json.loads(json.dumps(doc)) == doc
    assert document() is doc, "built once and cached"
    assert set(doc) <= {"openapi", "info", "servers", "paths", "components", "security", "tags", "externalDocs"}
    for path in doc["paths"]:
        assert path.startswith("/")


def test_every_ref_resolves():
    doc = document()
    refs = [(where, node["$ref"]) for where, node in walk(doc) if "$ref" in node]
    assert len(refs) > 50
    for where, ref in refs:
        target = resolve(doc, {"$ref": ref})
        assert isinstance(target, dict), f"{where}: {ref}"
    for where, node in walk(doc):
        if "$ref" in node:
            assert set(node) == {"$ref"}, f"{where}: $ref siblings are ignored in OpenAPI 3.0"


def test_every_path_parameter_is_declared_and_every_declared_one_is_in_the_path():
    doc = document()
    for path, method, item, op in operations(doc):
        params = [resolve(doc, p) for p in (*item.get("parameters", ()), *op.get("parameters", ()))]
        keys = [(p["name"], p["in"]) for p in params]
        assert len(keys) == len(set(keys)), f"{method} {path}: duplicate parameter"
        for p in params:
            assert p["in"] in {"query", "header", "path", "cookie"}
            assert "schema" in p and p.get("description"), f"{method} {path}: {p['name']}"
            if p["in"] == "path":
                assert p["required"] is True, f"{method} {path}: path parameter {p['name']} must be required"
        in_template = set(re.findall(r"\{([^}]+)\}", path))
        declared = {p["name"] for p in params if p["in"] == "path"}
        assert in_template == declared, f"{method} {path}: template {in_template} vs declared {declared}"


def test_operations_have_unique_ids_tags_and_responses():
    doc = document()
    tags = {t["name"] for t in doc["tags"]}
    ids = []
    for path, method, _, op in operations(doc):
        ids.append(op["operationId"])
        assert op["summary"], f"{method} {path}"
        assert op["tags"] and set(op["tags"]) <= tags, f"{method} {path}"
        assert op["responses"], f"{method} {path}"
        for status, response in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d|default", status), f"{method} {path}: {status}"
            response = resolve(doc, response)
            assert response["description"], f"{method} {path} {status}"
            for media in response.get("content", {}).values():
                assert "schema" in media
            assert "X-Correlation-ID" in response.get("headers", {}), f"{method} {path} {status}"
            for header in response.get("headers", {}).values():
                assert "schema" in resolve(doc, header)
        if "requestBody" in op:
            assert op["requestBody"]["content"]["application/json"]["schema"]
        assert resolve(doc, {"$ref": "#/components/parameters/CorrelationId"}) in [
            resolve(doc, p) for p in op["parameters"]
        ], f"{method} {path}: X-Correlation-ID request header"
    assert len(ids) == len(set(ids)), "operationId must be unique"


def test_schemas_are_well_formed():
    doc = document()
    for where, schema in schemas_in(doc):
        if "type" in schema:
            assert schema["type"] in TYPES, f"{where}: type {schema['type']!r} (no 'null' in 3.0)"
        if "nullable" in schema:
            assert isinstance(schema["nullable"], bool) and "type" in schema, f"{where}: nullable needs a type"
        for name in schema.get("required", ()):
            assert name in schema.get("properties", {}), f"{where}: required {name} is not a property"
        if schema.get("type") == "array":
            assert "items" in schema, where
        expected = PYTHON_TYPES.get(schema.get("type"))
        for value in [schema.get("default"), *schema.get("enum", ())]:
            if value is None or expected is None:
                continue
            assert isinstance(value, expected), f"{where}: {value!r} is not {schema['type']}"
        if "default" in schema and schema["default"] is None:
            pytest.fail(f"{where}: a null default")
        if "enum" in schema and None in schema["enum"]:
            assert schema.get("nullable") is True, f"{where}: null in enum needs nullable"
        if isinstance(schema.get("default"), int) and not isinstance(schema["default"], bool):
            assert schema.get("minimum", -(10**18)) <= schema["default"] <= schema.get("maximum", 10**18), where
        if "pattern" in schema:
            re.compile(schema["pattern"])


def test_envelope_error_codes_and_security():
    doc = document()
    schemas = doc["components"]["schemas"]
    fields = {"success", "data", "error", "message", "meta"}
    assert set(schemas["Envelope"]["required"]) == fields == set(schemas["Error"]["required"])
    assert set(schemas["PaginationMeta"]["required"]) == {
        "total",
        "limit",
        "page",
        "total_pages",
        "has_next",
        "has_previous",
    }
    codes = schemas["ErrorCode"]["enum"]
    assert set(CONTRACT_ERROR_CODES) <= set(codes) and set(STATUS_OF) <= set(codes)
    for name in ("Envelope", "PaginationMeta", "Error"):
        assert name in schemas
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["bearerFormat"] == "JWT"
    assert "HS256" in scheme["description"]
    for path, method, _, op in operations(doc):
        names = {name for requirement in op["security"] for name in requirement}
        assert names <= set(doc["components"]["securitySchemes"])
        if (method, path) in OPEN:
            assert op["security"] == [], f"{method} {path} needs no token"
        elif (method, path) == ("post", "/api/v1/users/"):
            assert op["security"] == [{}, {"bearerAuth": []}], "registration: token optional"
            assert "401" in op["responses"] and "403" in op["responses"]
        else:
            assert op["security"] == [{"bearerAuth": []}], f"{method} {path}"
            assert "401" in op["responses"], f"{method} {path}"


def test_send_documents_every_answer_of_the_contract():
    doc = document()
    send = doc["paths"]["/api/v1/notifications/"]["post"]
    responses = {status: resolve(doc, r) for status, r in send["responses"].items()}
    assert {"200", "202", "400", "401", "403", "404", "409", "413", "429", "503"} <= set(responses)
    assert "Idempotent-Replayed" in responses["200"]["headers"]
    assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]
    body = resolve(doc, send["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["required"]) == {"notification_type", "user_id", "template_code", "request_id"}
    props = body["properties"]
    priority = props["priority"]
    assert priority["minimum"] == 1 and priority["maximum"] == 10 and priority["default"] == 5
    assert props["request_id"]["minLength"] == 1 and props["request_id"]["maxLength"] == 128
    assert props["notification_type"]["enum"] == ["email", "push"]
    assert body["additionalProperties"] is False


def test_the_cached_document_is_not_altered_by_readers():
    before = copy.deepcopy(document())
    json.dumps(document())
    assert document() == before


# --- (b) coverage both ways ---------------------------------------------------------------------


def normalise(path: str) -> str:
    """Trailing slash and parameter names (and regexes) do not make a different operation."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def served(app):
    """(method, normalised path) of an app's routes, without aiohttp's automatic HEAD and without the
    operator console's pages (HTML for people under /admin, not part of the API)."""
    return {
        (route.method, normalise(route.resource.canonical))
        for route in app.router.routes()
        if route.method not in ("HEAD", "*") and not route.resource.canonical.startswith(CONSOLE)
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

    documented = {(method.upper(), normalise(path)) for path, method, _, _ in operations(document())}

    assert sorted(reachable - documented) == [], "served but not documented"
    assert sorted(documented - reachable) == [], "documented but not served"
    assert ("POST", "/api/v1/{}/status") in documented and ("POST", "/api/v1/auth/login") in documented


def test_collections_are_written_with_and_items_without_trailing_slash():
    paths = set(document()["paths"])
    assert {"/api/v1/notifications/", "/api/v1/users/", "/api/v1/templates/"} <= paths
    for path in paths:
        if path.endswith("/"):
            assert not path.endswith("}/"), path


# --- (c) served by the gateway ------------------------------------------------------------------


@pytest.fixture
async def client(aiohttp_client, settings):
    app = create_gateway(settings)
    if aiohttp_jinja2.APP_KEY not in app:
        setup_docs(app)
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
    assert body["openapi"].startswith("3.") and "success" not in body
    assert body == json.loads(json.dumps(document()))
    assert (await client.get("/openapi.json/")).status == 200


async def test_docs_page_lists_every_operation_offline(client):
    resp = await client.get("/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert "/api/v1/notifications/" in html and "<h1>" in html
    for path, method, _, op in operations(document()):
        assert f'id="{op["operationId"]}"' in html, f"{method} {path} missing from the page"
        assert f'<span class="path">{path}</span>' in html
    assert "request_id" in html and "IDEMPOTENCY_CONFLICT" in html and "Idempotent-Replayed" in html
    assert "<script" not in html and 'src="http' not in html, "the page must work offline"
    assert aiohttp_jinja2.get_env(client.app).autoescape is True
    assert (await client.get("/docs/")).status == 200
