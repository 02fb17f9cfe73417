"""HTTP handlers: authenticate, read the request, call the service, wrap the answer in the envelope.

Authentication comes first in each so an anonymous caller learns nothing, not even whether its
body was valid.
"""

from __future__ import annotations

from aiohttp import web

from web.common.app_keys import settings_key
from web.common.auth import Caller, caller_of, require_privileged
from web.common.envelope import ok, page_meta
from web.common.validation import json_body
from web.templates import service


def _caller(request: web.Request) -> Caller:
    return caller_of(request, request.app[settings_key])


def _writer(request: web.Request) -> Caller:
    """Templates are shared by every user's notifications, so only admin and service tokens edit them."""
    caller = _caller(request)
    require_privileged(caller)
    return caller


async def create_template(request: web.Request) -> web.Response:
    caller = _writer(request)
    template = await service.create(request.app, caller, await json_body(request))
    return ok(template, message="template created", status=201)


async def list_templates(request: web.Request) -> web.Response:
    _caller(request)
    items, total, page, limit = await service.listing(request.app, request)
    return ok(items, message="templates", meta=page_meta(total=total, limit=limit, page=page))


async def get_template(request: web.Request) -> web.Response:
    _caller(request)
    code = service.code_of(request.match_info["code"])
    asked = service.language_of(request.query.get("language"))
    template = await service.get(request.app, code, asked)
    message = (
        "template found"
        if template["language"] == asked
        else (f"no {asked!r} version; returned {template['language']!r}")
    )
    return ok(template, message=message)


async def update_template(request: web.Request) -> web.Response:
    caller = _writer(request)
    code = service.code_of(request.match_info["code"])
    template = await service.update(request.app, caller, code, await json_body(request))
    return ok(template, message=f"template updated to version {template['version']}")


async def list_versions(request: web.Request) -> web.Response:
    _caller(request)
    code = service.code_of(request.match_info["code"])
    items, total, page, limit = await service.versions(request.app, request, code)
    return ok(items, message="template versions, newest first", meta=page_meta(total=total, limit=limit, page=page))


async def render_template(request: web.Request) -> web.Response:
    _caller(request)
    code = service.code_of(request.match_info["code"])
    rendered = await service.render(request.app, code, await json_body(request))
    return ok(rendered, message="template rendered")
