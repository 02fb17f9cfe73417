"""HTTP edges of the template service: the checked request in, :mod:`web.templates.service` called,
its answer out."""

from __future__ import annotations

from aiohttp import web
from msgspec import UNSET

from models.template import DEFAULT_LANGUAGE
from web.common.api import Reply
from web.common.auth import Caller
from web.common.envelope import page_meta
from web.templates import service
from web.templates.schemas import (
    RenderRequest,
    TemplateCreate,
    TemplateListQuery,
    TemplatePath,
    TemplateQuery,
    TemplateUpdate,
    VersionsQuery,
)


async def create_template(request: web.Request, *, caller: Caller, body: TemplateCreate) -> dict:
    return await service.create(request.app, caller, body)


async def list_templates(request: web.Request, *, caller: Caller, query: TemplateListQuery) -> Reply:
    items, total = await service.listing(request.app, query)
    return Reply(items, meta=page_meta(total=total, limit=query.limit, page=query.page))


async def get_template(request: web.Request, *, caller: Caller, path: TemplatePath, query: TemplateQuery) -> Reply:
    asked = DEFAULT_LANGUAGE if query.language is UNSET else query.language
    template = await service.get(request.app, path.code, asked)
    found = template["language"]
    return Reply(template, message="template found" if found == asked else f"no {asked!r} version; returned {found!r}")


async def update_template(request: web.Request, *, caller: Caller, path: TemplatePath, body: TemplateUpdate) -> Reply:
    template = await service.update(request.app, caller, path.code, body)
    return Reply(template, message=f"template updated to version {template['version']}")


async def list_versions(request: web.Request, *, caller: Caller, path: TemplatePath, query: VersionsQuery) -> Reply:
    items, total = await service.versions(request.app, path.code, query)
    return Reply(items, meta=page_meta(total=total, limit=query.limit, page=query.page))


async def render_template(request: web.Request, *, caller: Caller, path: TemplatePath, body: RenderRequest) -> dict:
    return await service.render(request.app, path.code, body)
