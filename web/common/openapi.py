"""The OpenAPI 3.1 document of a list of :class:`~web.common.api.Operation` (ARCHITECTURE.md, "Where
each policy lives"): the Structs become component schemas through msgspec, each operation its path
item with parameters, body, every status it can answer, security and links.

The envelope is spelled out per answer (``data`` typed, ``meta`` the pagination on lists) so a client
generator and a contract tester know exactly what comes back. :mod:`web.common.openapi30` says the
same in 3.0.3 for the tools that read only that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from web.common.api import Operation
from web.common.envelope import STATUS_OF
from web.common.fields import CORRELATION_ID, JSON_VALUE, CorrelationHeader, PaginationMeta

REF = "#/components/schemas/{name}"
Doc = dict[str, Any]

#: status: (component name, what it means wherever no operation says more)
ERRORS = {
    400: ("BadRequest", "The request is malformed or a field is invalid; the message names the field."),
    401: ("Unauthorized", "Missing, expired or invalid bearer token."),
    403: ("Forbidden", "The token's role may not do this."),
    404: ("NotFound", "No such object, or it is another user's; an id that cannot exist is not found either."),
    409: ("Conflict", "It already exists."),
    413: ("PayloadTooLarge", "The body is over 1 MiB."),
    429: ("RateLimited", "Too many requests; retry after Retry-After seconds."),
    500: ("InternalError", "An unexpected error; quote the X-Correlation-ID when reporting it."),
    503: ("ServiceUnavailable", "A dependency is unavailable; retry after Retry-After seconds."),
}
ERROR_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}
HEADERS = {
    "X-Correlation-ID": {
        "required": True,
        "description": "The request's correlation id: the one sent, or a new UUID when none or a malformed "
        "one was sent.",
        "schema": {"type": "string", "pattern": CORRELATION_ID},
    },
    "Retry-After": {"description": "Whole seconds to wait before trying again.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": 'Bearer realm="herald", when no token was sent.', "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "required": True,
        "description": "The stored answer to an earlier identical request.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
#: What a 403 means on an operation whose role rule is declared.
ROLE_NOTES = {
    "privileged": "The token is a user's; this needs an admin or service token.",
    "admin": "This needs an admin token.",
}
SECURITY = {"bearer": [{"bearerAuth": []}], "optional": [{}, {"bearerAuth": []}], "none": []}


def build(
    operations: Iterable[Operation], *, title: str, version: str, description: str, tags: list[Doc], bearer: str
) -> Doc:
    """The document; ``bearer`` describes the token (who issues it, what its roles may do)."""
    ops = list(operations)
    types = _types(ops)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    schema_of = dict(zip(map(_key, types), schemas, strict=True))
    components = {**components, "JsonValue": JSON_VALUE, "Error": _error_schema()}
    _show_defaults(types, components)
    correlation = _parameters(CorrelationHeader, "header", components)[0]
    paths: Doc = {}
    for op in ops:
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, schema_of, components)
    for kind in {t for op in ops for t in (op.query, op.path_params) if t is not None} | {CorrelationHeader}:
        components.pop(kind.__name__, None)  # spread into parameters, never referenced
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "responses": {name: _error_response(text, status) for status, (name, text) in ERRORS.items()},
            "parameters": {"CorrelationId": correlation},
            "headers": HEADERS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": bearer}
            },
        },
    }


def _key(kind: Any) -> str:
    return repr(kind)


def _types(ops: list[Operation]) -> list[Any]:
    """Every type the document describes, once each (parameters, bodies, answers)."""
    found: dict[str, Any] = {_key(PaginationMeta): PaginationMeta, _key(CorrelationHeader): CorrelationHeader}
    for op in ops:
        for kind in (op.body, op.query, op.path_params, op.response, op.error_data):
            if kind is not None:
                found.setdefault(_key(kind), kind)
    return list(found.values())


def _show_defaults(types: list[Any], components: Doc) -> None:
    """A Struct's ``defaults`` (what an absent or null field becomes) replace msgspec's null default."""
    for kind in map(_origin, types):
        defaults = getattr(kind, "defaults", None)
        if isinstance(defaults, Mapping) and getattr(kind, "__name__", None) in components:
            for name, value in defaults.items():
                components[kind.__name__]["properties"][name]["default"] = value


def _origin(kind: Any) -> Any:
    """The Struct behind ``Annotated[Struct, ...]``."""
    return getattr(kind, "__origin__", kind) if hasattr(kind, "__metadata__") else kind


def _error_schema() -> Doc:
    return {
        "type": "object",
        "description": "The envelope of a refusal.",
        "required": ["success", "data", "error", "message", "meta"],
        "properties": {
            "success": {"const": False},
            "data": {"type": "null"},
            "error": {"type": "string", "enum": list(STATUS_OF), "description": "A stable upper-case code."},
            "message": {"type": "string", "description": "What went wrong, naming the field where there is one."},
            "meta": {"type": "null"},
        },
    }


def _envelope(data: Doc, meta: Doc) -> Doc:
    return {
        "type": "object",
        "required": ["success", "data", "error", "message", "meta"],
        "properties": {
            "success": {"const": True},
            "data": data,
            "error": {"type": "null"},
            "message": {"type": "string"},
            "meta": meta,
        },
    }


def _headers(*names: str) -> Doc:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Correlation-ID", *names)}


def _error_response(text: str, status: int, data: Doc | None = None) -> Doc:
    schema: Doc = {"$ref": REF.format(name="Error")}
    if data is not None:  # the Error envelope with data allowed (an allOf could not widen its null data)
        schema = _error_schema()
        schema["properties"] = {**schema["properties"], "data": {"anyOf": [data, {"type": "null"}]}}
    return {
        "description": text,
        "headers": _headers(*ERROR_HEADERS.get(status, ())),
        "content": {"application/json": {"schema": schema}},
    }


def _parameters(kind: type | None, where: str, components: Doc) -> list[Doc]:
    """One parameter per field of a query or path Struct."""
    if kind is None:
        return []
    schema = components[kind.__name__]
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        param: Doc = {"name": name, "in": where, "required": where == "path" or name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        out.append(param)
    return out


def _operation(op: Operation, schema_of: dict[str, Doc], components: Doc) -> Doc:
    params = _parameters(op.path_params, "path", components) + _parameters(op.query, "query", components)
    entry: Doc = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
        "parameters": [*params, {"$ref": "#/components/parameters/CorrelationId"}],
        "responses": _responses(op, schema_of),
        "security": SECURITY[op.security],
    }
    if op.description:
        entry["description"] = op.description
    if op.body is not None:
        media: Doc = {"schema": schema_of[_key(op.body)]}
        if op.examples:
            media["examples"] = {name: {"value": value} for name, value in op.examples.items()}
        entry["requestBody"] = {"required": True, "content": {"application/json": media}}
    return entry


def _responses(op: Operation, schema_of: dict[str, Doc]) -> Doc:
    notes = {403: ROLE_NOTES[op.access], **op.notes} if op.access in ROLE_NOTES else op.notes
    data = schema_of[_key(op.response)] if op.response is not None else {"type": "null"}
    if op.enveloped:
        meta = schema_of[_key(PaginationMeta)] if op.paginated else {"type": "null"}
        content = {op.media: {"schema": _envelope(data, meta)}}
    else:
        content = {op.media: {"schema": data}}
    out: Doc = {}
    for status in op.statuses():
        if status in (op.status, *op.also):
            answer: Doc = {
                "description": notes.get(status, op.summary),
                "headers": _headers(*op.response_headers.get(status, ())),
                "content": content,
            }
            if op.links and status == op.status:
                answer["links"] = {name: dict(link) for name, link in op.links.items()}
            out[str(status)] = answer
        elif status in notes or op.error_data is not None:
            error_data = schema_of[_key(op.error_data)] if op.error_data is not None else None
            out[str(status)] = _error_response(notes.get(status, ERRORS[status][1]), status, error_data)
        else:
            out[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    return out
