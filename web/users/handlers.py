"""HTTP edges of the user service: the checked request in, :mod:`web.users.service` called, its
answer out. Rules live in the service so the handlers stay a readable map of the API."""

from __future__ import annotations

from aiohttp import web

from web.common.api import Reply
from web.common.auth import Caller
from web.common.envelope import page_meta
from web.common.login_limits import client_address
from web.users import service
from web.users.schemas import LoginRequest, UserCreate, UserListQuery, UserPath, UserUpdate


async def create_user(request: web.Request, *, caller: Caller | None, body: UserCreate) -> dict:
    return await service.create_user(request.app, body, caller)


async def list_users(request: web.Request, *, caller: Caller, query: UserListQuery) -> Reply:
    total, users = await service.list_users(
        request.app, page=query.page, limit=query.limit, email=query.email, search=query.search
    )
    return Reply(users, meta=page_meta(total=total, limit=query.limit, page=query.page))


async def get_user(request: web.Request, *, caller: Caller, path: UserPath) -> dict:
    return await service.get_user(request.app, caller, str(path.user_id))


async def update_user(request: web.Request, *, caller: Caller, path: UserPath, body: UserUpdate) -> dict:
    return await service.update_user(request.app, caller, str(path.user_id), body)


async def delete_user(request: web.Request, *, caller: Caller, path: UserPath) -> dict:
    return await service.deactivate_user(request.app, caller, str(path.user_id))


async def login(request: web.Request, *, body: LoginRequest) -> dict:
    return await service.login(request.app, body, address=client_address(request))
