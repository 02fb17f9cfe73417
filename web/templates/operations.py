"""The template service's operations: each route with what it takes, answers and needs (registered
by :mod:`web.templates.app`, documented by the gateway, which forwards these paths)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from web.common.api import Operation
from web.templates import handlers
from web.templates.schemas import (
    SOME_CHANGE,
    Rendered,
    RenderRequest,
    Template,
    TemplateCreate,
    TemplateListQuery,
    TemplatePath,
    TemplateQuery,
    TemplateUpdate,
    TemplateVersion,
    VersionsQuery,
)

TAGS = [{"name": "templates", "description": "Versioned Jinja2 templates per (code, language), and rendering."}]
NOT_FOUND = "no such template"
BY_CODE = {"code": "$response.body#/data/code"}
IN_LANGUAGE = {**BY_CODE, "language": "$response.body#/data/language"}
SYNTAX = "A field is invalid, or subject or content is not valid Jinja2 (the message names it and the line)."

WELCOME = {
    "code": "welcome",
    "name": "Welcome",
    "description": "Sent once the account exists",
    "subject": "Welcome, {{ name }}",
    "content": '<p>Hello {{ name }}, <a href="{{ link }}">confirm your address</a>.</p>',
    "language": "en",
}

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/templates/",
        "createTemplate",
        "Create a template (admin and service tokens)",
        handlers.create_template,
        tags=("templates",),
        body=TemplateCreate,
        response=Template,
        status=201,
        errors=(409,),
        notes={400: SYNTAX, 409: "The code already exists in that language."},
        access="privileged",
        message="template created",
        links={
            "GetTemplate": {"operationId": "getTemplate", "parameters": IN_LANGUAGE},
            "UpdateTemplate": {"operationId": "updateTemplate", "parameters": BY_CODE},
            "ListVersions": {"operationId": "listTemplateVersions", "parameters": IN_LANGUAGE},
            "RenderTemplate": {"operationId": "renderTemplate", "parameters": BY_CODE},
        },
        examples={"welcome": WELCOME},
    ),
    Operation(
        "GET",
        "/api/v1/templates/",
        "listTemplates",
        "List templates by code and language",
        handlers.list_templates,
        tags=("templates",),
        query=TemplateListQuery,
        response=list[Template],
        paginated=True,
        message="templates",
    ),
    Operation(
        "GET",
        "/api/v1/templates/{code}",
        "getTemplate",
        "A template in a language",
        handlers.get_template,
        tags=("templates",),
        description="Falls back to en when there is no version in the language asked for (the message says so).",
        path_params=TemplatePath,
        query=TemplateQuery,
        response=Template,
        not_found=NOT_FOUND,
    ),
    Operation(
        "PUT",
        "/api/v1/templates/{code}",
        "updateTemplate",
        "Save a new version (admin and service tokens)",
        handlers.update_template,
        tags=("templates",),
        path_params=TemplatePath,
        body=Annotated[TemplateUpdate, Meta(extra_json_schema=SOME_CHANGE)],
        response=Template,
        notes={400: SYNTAX, 404: "No such template in that language."},
        access="privileged",
        not_found=NOT_FOUND,
        examples={"content": {"content": "<p>Hi {{ name }}!</p>"}},
    ),
    Operation(
        "GET",
        "/api/v1/templates/{code}/versions",
        "listTemplateVersions",
        "A template's version history, newest first",
        handlers.list_versions,
        tags=("templates",),
        path_params=TemplatePath,
        query=VersionsQuery,
        response=list[TemplateVersion],
        paginated=True,
        not_found=NOT_FOUND,
        message="template versions, newest first",
    ),
    Operation(
        "POST",
        "/api/v1/templates/{code}/render",
        "renderTemplate",
        "Render a template with variables",
        handlers.render_template,
        tags=("templates",),
        description="In the sandbox, HTML autoescaped, in the language asked for or else en.",
        path_params=TemplatePath,
        body=RenderRequest,
        response=Rendered,
        notes={400: "A field is invalid, or the template cannot render with these variables (the message says why)."},
        not_found=NOT_FOUND,
        message="template rendered",
        examples={"ada": {"variables": {"name": "Ada", "link": "https://example.com/confirm"}, "language": "en"}},
    ),
]
