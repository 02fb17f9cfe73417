"""Field types and Structs the three services' declarations share: text without NUL or line breaks,
free JSON objects, paging, the correlation header, timestamps.

Patterns are Python ``re`` patterns that mean the same in the OpenAPI document (ECMA 262): classes
are spelled out (no ``\\d`` or ``\\s``, whose meaning differs), and each ends in ``$(?!\\n)``, since
Python's ``$`` also matches before a final line break.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from models.template import LANGUAGE_RE

#: Any text without NUL (PostgreSQL cannot store it).
NO_NUL = r"^[^\x00]*$(?!\n)"
#: One line: no control character at all (a mail header, a name, an id).
SINGLE_LINE = r"^[^\x00-\x1f\x7f]*$(?!\n)"
#: The correlation id a client may choose; anything else is replaced, never refused (README, "Using it").
CORRELATION_ID = r"^[A-Za-z0-9._:\-]{1,128}$(?!\n)"
#: Free JSON objects (template variables, metadata): at most this many bytes as compact JSON.
MAX_OBJECT_BYTES = 64 * 1024
PAGE_MAX, LIMIT_MAX, LIMIT_DEFAULT = 10**6, 100, 20

#: Any JSON value but NUL, which the body check refuses; the document's JsonValue component.
JSON_VALUE = {
    "description": "Any JSON value; no string or key may contain NUL.",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
            "propertyNames": {"pattern": NO_NUL},
        },
    ],
}
_FREE_OBJECT = {
    "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
    "propertyNames": {"pattern": NO_NUL},
}


def anchored(pattern: str) -> str:
    """A pattern kept elsewhere (models/) as the document and msgspec need it: ``$`` not matching
    before a final line break."""
    return pattern + "(?!\\n)" if pattern.endswith("$") else pattern


def text(low: int, high: int, *, pattern: str = NO_NUL, description: str = "", examples: tuple = ()) -> Any:
    """A string of ``low`` to ``high`` characters matching ``pattern``."""
    meta = Meta(
        min_length=low,
        max_length=high,
        pattern=pattern,
        description=description or None,
        examples=list(examples) or None,
    )
    return Annotated[str, meta]


def line(low: int, high: int, *, description: str = "", examples: tuple = ()) -> Any:
    """One line of ``low`` to ``high`` characters: no CR, LF, NUL or other control character."""
    return text(low, high, pattern=SINGLE_LINE, description=description, examples=examples)


def json_object(description: str, properties: dict[str, Any] | None = None) -> Any:
    """A free JSON object, its size checked by the Struct holding it (:func:`oversized`);
    ``properties`` documents keys its ``__post_init__`` checks."""
    schema = {**_FREE_OBJECT, "properties": properties} if properties else _FREE_OBJECT
    return Annotated[dict[str, Any], Meta(description=description, extra_json_schema=schema)]


def oversized(value: dict[str, Any]) -> bool:
    return len(msgspec.json.encode(value)) > MAX_OBJECT_BYTES


Timestamp = Annotated[dt.datetime, Meta(tz=True, description="UTC, ISO 8601 with Z")]
#: A language tag as templates and preferences take it ("en", "fr", "pt-BR").
Language = Annotated[str, Meta(pattern=anchored(LANGUAGE_RE.pattern), examples=["pt-BR"])]


class PageQuery(Struct, forbid_unknown_fields=False):
    """``page`` and ``limit`` of a paginated list; every list operation's query extends it."""

    page: Annotated[int, Meta(ge=1, le=PAGE_MAX, description="Page number, from 1.")] = 1
    limit: Annotated[int, Meta(ge=1, le=LIMIT_MAX, description="Page size.")] = LIMIT_DEFAULT


class PaginationMeta(Struct):
    """``meta`` of every list answer."""

    total: Annotated[int, Meta(ge=0, description="Items matching the query.")]
    limit: Annotated[int, Meta(ge=1)]
    page: Annotated[int, Meta(ge=1)]
    total_pages: Annotated[int, Meta(ge=0, description="ceil(total / limit)")]
    has_next: bool
    has_previous: bool


class CorrelationHeader(Struct, rename={"correlation_id": "X-Correlation-ID"}):
    """The request header every operation takes (read by the correlation middleware, which runs
    before routing, so it covers unknown paths too)."""

    correlation_id: (
        Annotated[
            str,
            Meta(
                description="Your id for this request, echoed in the response and in every log line and message "
                "that follows from it. A value that is not 1-128 characters of A-Z a-z 0-9 . _ : - is not refused: "
                "it is replaced by a new UUID, as is a missing one."
            ),
        ]
        | UnsetType
    ) = UNSET


def fill_defaults(struct: Struct) -> None:
    """Replace each absent or null field named in the Struct's ``defaults`` (a ClassVar) by its
    default: called from ``__post_init__``, and the document shows these defaults too."""
    for name, value in type(struct).defaults.items():
        if getattr(struct, name) is None:
            setattr(struct, name, dict(value) if isinstance(value, dict) else value)
