"""The 3.1 document of :mod:`web.common.openapi` said in OpenAPI 3.0.3.

Served as 3.0.3 because the Swagger UI of ``/docs`` (swagger-ui-bundle's 4.15) renders only 3.0
(README, "Dependencies"). msgspec writes JSON Schema 2020-12; 3.0 has ``nullable`` instead of a null
type, no ``const``, one ``example`` instead of ``examples``, no ``propertyNames``, and ignores the
siblings of a ``$ref``.
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]

_SUBSCHEMAS = ("items", "additionalProperties", "not")
_COMBINED = ("anyOf", "oneOf", "allOf")
_DROPPED = ("propertyNames", "$schema")


def to_openapi_30(doc: Doc) -> Doc:
    out = _walk({k: v for k, v in doc.items() if k != "components"})
    components = dict(doc["components"])
    schemas = {name: _schema(s) for name, s in components.pop("schemas").items()}
    out["components"] = {"schemas": schemas, **_walk(components)}
    out["openapi"] = "3.0.3"
    return out


def _walk(node: Any) -> Any:
    """Every ``schema`` below ``node`` converted; the rest kept as it is."""
    if isinstance(node, dict):
        return {k: (_schema(v) if k == "schema" else _walk(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v) for v in node]
    return node


def _schema(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in _DROPPED}
    if node.get("required") == []:
        del node["required"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    examples = node.pop("examples", None)
    if isinstance(examples, list) and examples:
        node["example"] = examples[0]
    if node.get("type") == "null":
        del node["type"]
        node.update(nullable=True, enum=[None])
    for key in _COMBINED:
        if key in node:
            _combine(node, key)
    for key in _SUBSCHEMAS:
        if isinstance(node.get(key), dict):
            node[key] = _schema(node[key])
    if isinstance(node.get("properties"), dict):
        node["properties"] = {k: _schema(v) for k, v in node["properties"].items()}
    if "$ref" in node and len(node) > 1:
        node["allOf"] = [{"$ref": node.pop("$ref")}, *node.get("allOf", [])]
    return node


def _combine(node: Doc, key: str) -> None:
    """``anyOf: [X, null]`` becomes X with ``nullable``; a lone ``$ref`` stays behind an ``allOf``."""
    parts = [_schema(p) for p in node[key]]
    kept = [p for p in parts if p.get("enum") != [None]]
    if len(kept) < len(parts):
        node["nullable"] = True
    if len(kept) == 1 and key != "allOf":
        del node[key]
        only = kept[0]
        if "$ref" in only:
            node["allOf"] = [only, *node.get("allOf", [])]
        else:
            node.update({k: v for k, v in only.items() if k not in node or k == "nullable"})
    else:
        node[key] = kept
