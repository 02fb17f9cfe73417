"""HTTP edges of the user service: read the request, call :mod:`web.users.service`, wrap the answer.

Rules live in the service so the handlers stay a readable map of the API.
"""

from __future__ import annotations

from aiohttp import web

from web.common.app_keys import settings_key
from web.common.auth import Caller, caller_of, require_privileged
from web.common.envelope import ok, page_meta
from web.common.login_limits import client_address
from web.common.validation import json_body, paging
from web.users import service


def _caller(request: web.Request) -> Caller:
    return caller_of(request, request.app[settings_key])


def _optional_caller(request: web.Request) -> Caller | None:
    """Registration is open; a token, when sent, must still be valid (it may grant ``role``)."""
    if "Authorization" not in request.headers:
        return None
    return _caller(request)


async def create_user(request: web.Request) -> web.Response:
    caller = _optional_caller(request)
    body = await json_body(request)
    user = await service.create_user(request.app, body, caller)
    return ok(user, message="user created", status=201)


async def list_users(request: web.Request) -> web.Response:
    require_privileged(_caller(request))
    page, limit = paging(request)
    filters = service.list_filters(request.query)
    total, users = await service.list_users(request.app, page=page, limit=limit, **filters)
    return ok(users, message="users", meta=page_meta(total=total, limit=limit, page=page))


async def get_user(request: web.Request) -> web.Response:
    caller = _caller(request)
    user_id = service.path_user_id(request.match_info["user_id"])
    return ok(await service.get_user(request.app, caller, user_id), message="user")


async def update_user(request: web.Request) -> web.Response:
    caller = _caller(request)
    user_id = service.path_user_id(request.match_info["user_id"])
    body = await json_body(request)
    user = await service.update_user(request.app, caller, user_id, body)
    return ok(user, message="user updated")


async def delete_user(request: web.Request) -> web.Response:
    caller = _caller(request)
    user_id = service.path_user_id(request.match_info["user_id"])
    user = await service.deactivate_user(request.app, caller, user_id)
    return ok(user, message="user deactivated")


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    token = await service.login(request.app, body, address=client_address(request))
    return ok(token, message="logged in")
