"""``/openapi.json`` and ``/docs``: the API described for tools and for people.

The page is rendered on the server from the same document tools read, so it cannot disagree
with it, and it needs no script from a CDN: it works on a machine without internet access.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from web.gateway.openapi import document

HIDDEN_HEADERS = {"X-Correlation-ID"}  # on every request and response; the page says so once


def setup_docs(app: web.Application) -> None:
    """Give the gateway its Jinja2 environment; calling it twice keeps the first one."""
    if aiohttp_jinja2.APP_KEY in app:
        return
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("web.gateway", "templates"), autoescape=True)


@functools.cache
def _document_json() -> str:
    return json.dumps(document(), separators=(",", ":"))


async def openapi_json(request: web.Request) -> web.Response:
    """A spec for tools, so plain JSON rather than the envelope."""
    return web.Response(text=_document_json(), content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("docs.html", request, page_context())


# --- the page's view of the document ----------------------------------------------------------


@functools.cache
def page_context() -> dict[str, Any]:
    doc = document()
    groups = {tag["name"]: {**tag, "operations": []} for tag in doc["tags"]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            groups[op["tags"][0]]["operations"].append(_operation(doc, path, method, op))
    schemas = doc["components"]["schemas"]
    return {
        "info": doc["info"],
        "groups": [group for group in groups.values() if group["operations"]],
        "auth": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
        "error_codes": schemas["ErrorCode"]["enum"],
        "schemas": [
            {"name": name, "description": schema.get("description", ""), "fields": _fields(doc, schema)}
            for name, schema in schemas.items()
            if "properties" in schema
        ],
    }


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        section, kind, name = node["$ref"].removeprefix("#/").split("/")
        node = doc[section][kind][name]
    return node


def _ref_name(node: dict) -> str | None:
    return node["$ref"].rsplit("/", 1)[1] if "$ref" in node else None


def _type(node: dict) -> str:
    if "$ref" in node:
        return str(_ref_name(node))
    if "allOf" in node:
        text = " & ".join(_type(part) for part in node["allOf"])
    elif node.get("type") == "array":
        text = "array of " + _type(node.get("items", {}))
    else:
        text = node.get("type", "any") + (f" ({node['format']})" if "format" in node else "")
    if "enum" in node:
        text += ": " + " | ".join("null" if v is None else json.dumps(v) for v in node["enum"])
    return text + (" or null" if node.get("nullable") else "")


CONSTRAINTS = [
    ("minLength", "min length {}"),
    ("maxLength", "max length {}"),
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("pattern", "pattern {}"),
    ("minProperties", "at least {} field(s)"),
]


def _constraints(node: dict) -> list[str]:
    out = [template.format(node[key]) for key, template in CONSTRAINTS if key in node]
    if "default" in node:
        out.append("default " + json.dumps(node["default"]))
    if node.get("additionalProperties") is False:
        out.append("no other fields")
    return out


def _fields(doc: dict, schema: dict, prefix: str = "") -> list[dict]:
    """The schema's fields; an inline object's own fields follow it as ``parent.child``."""
    schema = _resolve(doc, schema)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        out.append(
            {
                "name": prefix + name,
                "type": _type(prop),
                "required": name in required,
                "constraints": _constraints(_resolve(doc, prop)),
                "description": prop.get("description", ""),
            }
        )
        if "properties" in prop:
            out += _fields(doc, prop, prefix=f"{prefix}{name}.")
    return out


def _payload(node: dict) -> str:
    """What a response carries, in the envelope's words (data type, or error codes)."""
    parts = node.get("allOf", [])
    base = _ref_name(parts[0]) if parts else None
    narrowed = parts[1].get("properties", {}) if len(parts) > 1 else {}
    if base == "Envelope":
        return "; ".join(f"{key}: {_type(value)}" for key, value in narrowed.items())
    if base == "Error":
        codes = narrowed.get("error", {}).get("enum", [])
        data = f"; data: {_type(narrowed['data'])}" if "data" in narrowed else ""
        return "error: " + " | ".join(codes) + data
    return _type(node)


def _response(doc: dict, status: str, response: dict) -> dict:
    response = _resolve(doc, response)
    media, body = next(iter(response.get("content", {}).items()), (None, {}))
    return {
        "status": status,
        "description": response["description"],
        "media": media,
        "payload": _payload(body.get("schema", {})) if media else "",
        "headers": [name for name in response.get("headers", {}) if name not in HIDDEN_HEADERS],
    }


def _security(op: dict) -> str:
    schemes = op.get("security", [])
    if not schemes:
        return "none"
    return "optional bearer token" if {} in schemes else "bearer token"


def _operation(doc: dict, path: str, method: str, op: dict) -> dict:
    params = [_resolve(doc, p) for p in op.get("parameters", [])]
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    return {
        "id": op["operationId"],
        "method": method.upper(),
        "path": path,
        "summary": op["summary"],
        "description": op.get("description", ""),
        "security": _security(op),
        "parameters": [
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "type": _type(p["schema"]),
                "constraints": _constraints(p["schema"]),
                "description": p.get("description", ""),
            }
            for p in params
            if p["name"] not in HIDDEN_HEADERS
        ],
        "body": None
        if body is None
        else {
            "name": _ref_name(body),
            "fields": _fields(doc, body),
            "description": _resolve(doc, body).get("description", ""),
        },
        "responses": [_response(doc, status, response) for status, response in op["responses"].items()],
    }
