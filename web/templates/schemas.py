"""What the template service takes and answers, declared once: msgspec checks requests against
these Structs and the OpenAPI document is written from them (ARCHITECTURE.md, "Where each policy
lives").

``null`` for an optional field means the same as leaving it out, except ``description: null`` in a
new version, which clears it (README, "Using it").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from msgspec import UNSET, Meta, Struct, UnsetType

from models.template import DEFAULT_LANGUAGE
from web.common.decoding import invalid
from web.common.fields import (
    MAX_OBJECT_BYTES,
    Language,
    PageQuery,
    Timestamp,
    fill_defaults,
    json_object,
    line,
    oversized,
    text,
)

#: A template code: lower-case letters, digits and _ . - (a code that could not be created is not found).
CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$(?!\n)"
MAX_CONTENT = 100_000
#: RFC 5322's line limit: a longer subject could not be sent as one header line.
MAX_SUBJECT = 998
MAX_NAME = 200
MAX_DESCRIPTION = 2000

Code = Annotated[str, Meta(pattern=CODE_PATTERN, description="Unique per language.", examples=["welcome"])]
Name = line(1, MAX_NAME, examples=("Welcome",))
Description = text(0, MAX_DESCRIPTION)
Subject = line(0, MAX_SUBJECT, description="Jinja2 source of the e-mail subject or push title.")
Content = text(1, MAX_CONTENT, description="Jinja2 source of the body (HTML for e-mail).")


class TemplateCreate(Struct, forbid_unknown_fields=True):
    """Version 1 of a template in a language; the source is checked for Jinja2 syntax."""

    defaults: ClassVar[Mapping[str, Any]] = {"subject": "", "language": DEFAULT_LANGUAGE}

    code: Code
    name: Name
    content: Content
    description: Description | None = None
    subject: Subject | None = None
    language: Language | None = None

    def __post_init__(self) -> None:
        fill_defaults(self)


class TemplateUpdate(Struct, forbid_unknown_fields=True):
    """A new version of the template in ``language``; the old one stays in the history. Only the
    fields given change (null: unchanged), at least one of name, description, subject, content,
    is_active; description null clears it."""

    defaults: ClassVar[Mapping[str, Any]] = {"language": DEFAULT_LANGUAGE}

    name: Name | None = None
    description: Description | UnsetType | None = UNSET
    subject: Subject | None = None
    content: Content | None = None
    is_active: Annotated[bool, Meta(description="An inactive template cannot be sent.")] | None = None
    language: Annotated[Language, Meta(description="Which language's template changes.")] | None = None

    def __post_init__(self) -> None:
        fill_defaults(self)


#: Which fields of :class:`TemplateUpdate` make a change, and the JSON type a change has.
CHANGES = {"name": "string", "subject": "string", "content": "string", "is_active": "boolean"}
#: The document's form of "at least one change": one of these fields with a non-null value, or a description.
SOME_CHANGE = {
    "anyOf": [
        *({"required": [name], "properties": {name: {"type": kind}}} for name, kind in CHANGES.items()),
        {"required": ["description"]},
    ]
}


class RenderRequest(Struct, forbid_unknown_fields=True):
    defaults: ClassVar[Mapping[str, Any]] = {"variables": {}, "language": DEFAULT_LANGUAGE}

    variables: json_object("The template's variables (at most 64 KiB as JSON).") | None = None
    language: Annotated[Language, Meta(description="Falls back to en.")] | None = None

    def __post_init__(self) -> None:
        fill_defaults(self)
        if oversized(self.variables):
            raise invalid("variables", f"must be at most {MAX_OBJECT_BYTES} bytes as JSON")


class TemplatePath(Struct):
    code: Annotated[
        str, Meta(pattern=CODE_PATTERN, description="The template's code; one that cannot exist answers 404.")
    ]


class TemplateQuery(Struct, forbid_unknown_fields=False):
    language: Annotated[Language, Meta(description="Falls back to en when there is no such version.")] | UnsetType = (
        UNSET
    )


class TemplateListQuery(PageQuery, forbid_unknown_fields=False):
    code: Annotated[Code, Meta(description="Only this code.")] | UnsetType = UNSET
    language: Annotated[Language, Meta(description="Only this language.")] | UnsetType = UNSET


class VersionsQuery(PageQuery, forbid_unknown_fields=False):
    language: Annotated[Language, Meta(description="Which language's history.")] | UnsetType = UNSET


class Template(Struct):
    id: uuid.UUID
    code: str
    name: str
    description: str | None
    subject: str
    content: str
    language: str
    version: Annotated[int, Meta(ge=1)]
    is_active: bool
    created_at: Timestamp
    updated_at: Timestamp


class TemplateVersion(Struct):
    id: uuid.UUID
    template_id: uuid.UUID
    version: Annotated[int, Meta(ge=1)]
    name: str
    description: str | None
    subject: str
    content: str
    created_by: Annotated[uuid.UUID | None, Meta(description="The admin who saved it; null for a service token.")]
    created_at: Timestamp


class Rendered(Struct):
    subject: str
    body: Annotated[str, Meta(description="HTML, autoescaped.")]
    text: Annotated[str, Meta(description="Plain text derived from the HTML, each link followed by its target.")]
    language: Annotated[str, Meta(description="The language actually used.")]
    version: Annotated[int, Meta(ge=1)]
