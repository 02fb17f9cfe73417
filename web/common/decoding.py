"""Request values decoded into the Structs an operation declares, and msgspec's errors reworded.

The Structs are the one statement of what a request may hold (ARCHITECTURE.md, "Where each policy
lives"); msgspec decodes and checks in one pass, strictly (no NaN or Infinity, no ``true`` for an
integer, no unknown field). This module adds the two checks msgspec cannot make (an empty body, a
NUL character, which PostgreSQL cannot store) and turns msgspec's one-line error into the
envelope's message, the field first: ``priority: must be <= 10``, ``user_id is required``,
``unknown field: x``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec
from msgspec import inspect

from web.common.envelope import ApiError

NOT_JSON = "request body is not valid JSON (or is nested too deeply)"

_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_WRONG_TYPE = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_LENGTH = re.compile(r"^Expected `(?P<kind>[^`]+)` of length (?P<op>[<>]=?) (?P<n>\d+)$")
_BOUND = re.compile(r"^Expected `[^`]+` (?P<op>[<>]=?) (?P<n>\S+)$")
_PATTERN = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$", re.S)
_ENUM = re.compile(r"^Invalid enum value ")
_STEP = re.compile(r"\.([^.\[]+)|\[([^\]]*)\]")

KINDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "null": "null",
    "object": "an object",
    "array": "an array",
    "uuid": "a UUID",
    "datetime": "a date-time",
}
REASONS = {
    "Invalid UUID": "must be a UUID",
    "Invalid RFC3339 encoded datetime": "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z",
    "Expected `datetime` with a timezone component": "must carry a UTC offset (Z or +hh:mm)",
    "Number out of range": "is a number out of range",
}
COUNTED = {"str": "characters long", "array": "items", "object": "keys"}


def fail(message: str) -> ApiError:
    return ApiError("VALIDATION_ERROR", message)


def invalid(path: str, reason: str) -> ValueError:
    """For a check in a Struct's ``__post_init__``: msgspec turns the ValueError into its
    ValidationError, and the suffix makes the message name the field like msgspec's own do."""
    return ValueError(f"{reason} - at `$.{path}`")


def decode_body(raw: bytes, decoder: msgspec.json.Decoder) -> Any:
    """The body as the decoder's type, or a 400 naming the field (413 comes from the size limit)."""
    if not raw:
        raise fail("request body is empty; expected a JSON object")
    if b"\\u0000" in raw:  # PostgreSQL's text and jsonb cannot hold NUL: refused here, not at storage
        raise fail("request body must not contain NUL characters (\\u0000)")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise fail(field_message(exc, decoder.type)) from None
    except (msgspec.DecodeError, RecursionError):
        raise fail(NOT_JSON) from None


def convert(values: dict[str, str], kind: type) -> Any:
    """Query-string or path values (all strings) as ``kind``; ``"5"`` becomes 5 where an int is due."""
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise fail(field_message(exc, kind)) from None


def field_message(exc: msgspec.ValidationError, kind: Any = None) -> str:
    """msgspec's message reworded so that it starts with the field it is about."""
    found = _AT.match(str(exc))
    reason, path = found["reason"], (found["path"] or "").lstrip(".")
    for pattern, text in ((_MISSING, "{} is required"), (_UNKNOWN, "unknown field: {}")):
        hit = pattern.match(reason)
        if hit:
            return text.format(".".join(p for p in (path, hit["name"]) if p))
    wrong = _WRONG_TYPE.match(reason)
    if not path and wrong and wrong["want"] == "object":
        return "request body must be a JSON object"
    return f"{path or 'request body'}: {_reworded(reason, kind, path)}"


def _reworded(reason: str, kind: Any, path: str) -> str:
    if reason in REASONS:
        return REASONS[reason]
    hit = _WRONG_TYPE.match(reason)
    if hit:
        return f"must be {_kinds(hit['want'])}, not {_kinds(hit['got'])}"
    hit = _LENGTH.match(reason)
    if hit:
        most = "at most" if hit["op"].startswith("<") else "at least"
        return f"must be {most} {hit['n']} {COUNTED.get(hit['kind'], 'long')}"
    hit = _BOUND.match(reason)
    if hit:
        return f"must be {hit['op']} {hit['n']}"
    hit = _PATTERN.match(reason)
    if hit:
        return "does not match the pattern " + hit["pattern"].replace("\\\\", "\\")  # msgspec doubles them
    if _ENUM.match(reason):
        allowed = _allowed_values(kind, path) if kind is not None else None
        return "must be one of: " + ", ".join(map(str, allowed)) if allowed else "is not one of the allowed values"
    return reason[:1].lower() + reason[1:]


def _kinds(names: str) -> str:
    return " or ".join(KINDS.get(name, name) for name in names.split(" | "))


@functools.cache
def _allowed_values(kind: Any, path: str) -> tuple | None:
    """The values a Literal field at ``path`` (``preferences.language``, ``items[0]``) admits."""
    info = inspect.type_info(kind)
    for name, index in _STEP.findall("." + path if path else ""):
        info = _member(info)
        if isinstance(info, inspect.StructType) and name:
            info = next((f.type for f in info.fields if f.encode_name == name), None)
        elif isinstance(info, inspect.DictType):
            info = info.value_type
        elif isinstance(info, (inspect.ListType, inspect.TupleType)) and index:
            info = getattr(info, "item_type", None)
        else:
            return None
    info = _member(info)
    return tuple(info.values) if isinstance(info, inspect.LiteralType) else None


def _member(info: Any) -> Any:
    """The one member of ``T | None`` (or an Annotated ``T``) that is not null."""
    while isinstance(info, (inspect.UnionType, inspect.Metadata)):
        if isinstance(info, inspect.Metadata):
            info = info.type
            continue
        # msgspec's inspect leaves UNSET out of a union's types already; only null is left to drop
        rest = [t for t in info.types if not isinstance(t, inspect.NoneType)]
        if len(rest) != 1:
            return info
        info = rest[0]
    return info
