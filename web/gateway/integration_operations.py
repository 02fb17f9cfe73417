"""The API-key and webhook operations (admin JWT only: an API key never manages keys or webhooks).
The rules are in :mod:`web.gateway.api_key_service` and :mod:`web.gateway.webhook_service`."""

from __future__ import annotations

from aiohttp import web

from web.common.api import Operation, Reply
from web.common.auth import Caller
from web.common.fields import PageQuery
from web.gateway import api_key_service as keys
from web.gateway import webhook_service as hooks
from web.gateway.integration_schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPath,
    Delivery,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookPath,
)

TAGS = [
    {"name": "api keys", "description": "Long-lived, revocable keys for applications (admin)."},
    {"name": "webhooks", "description": "Signed delivery outcomes pushed to an application (admin)."},
]
ADMIN_ONLY = {403: "Not an admin JWT (an API key never manages keys or webhooks)."}


async def create_key(request: web.Request, *, caller: Caller, body: ApiKeyCreate) -> dict:
    return await keys.create_api_key(request.app, caller, name=body.name, mode=body.mode, expires_at=body.expires_at)


async def list_keys(request: web.Request, *, caller: Caller, query: PageQuery) -> Reply:
    items, meta = await keys.list_api_keys(request.app, caller, page=query.page, limit=query.limit)
    return Reply(items, meta=meta)


async def revoke_key(request: web.Request, *, caller: Caller, path: ApiKeyPath) -> dict:
    return await keys.revoke_api_key(request.app, caller, str(path.key_id))


async def create_hook(request: web.Request, *, caller: Caller, body: WebhookCreate) -> dict:
    return await hooks.create_webhook(
        request.app, caller, url=body.url, events=body.events, description=body.description
    )


async def list_hooks(request: web.Request, *, caller: Caller, query: PageQuery) -> Reply:
    items, meta = await hooks.list_webhooks(request.app, caller, page=query.page, limit=query.limit)
    return Reply(items, meta=meta)


async def get_hook(request: web.Request, *, caller: Caller, path: WebhookPath) -> dict:
    return await hooks.get_webhook(request.app, caller, str(path.webhook_id))


async def delete_hook(request: web.Request, *, caller: Caller, path: WebhookPath) -> dict:
    return await hooks.delete_webhook(request.app, caller, str(path.webhook_id))


async def list_hook_deliveries(request: web.Request, *, caller: Caller, path: WebhookPath, query: PageQuery) -> Reply:
    items, meta = await hooks.list_deliveries(
        request.app, caller, str(path.webhook_id), page=query.page, limit=query.limit
    )
    return Reply(items, meta=meta)


KEY_NOT_FOUND, HOOK_NOT_FOUND = "API key not found", "webhook not found"
BY_KEY = {"key_id": "$response.body#/data/id"}
BY_HOOK = {"webhook_id": "$response.body#/data/id"}

OPERATIONS = [
    Operation(
        "POST",
        "/api/v1/api-keys/",
        "createApiKey",
        "Create an API key",
        create_key,
        tags=("api keys",),
        description="The key is in this answer only; Herald keeps a hash. Use it as `Authorization: Bearer <key>` "
        "wherever a service token is accepted.",
        body=ApiKeyCreate,
        response=ApiKeyCreated,
        status=201,
        errors=(403,),
        notes=ADMIN_ONLY,
        message="API key created",
        links={"RevokeApiKey": {"operationId": "revokeApiKey", "parameters": BY_KEY}},
        examples={"billing": {"name": "billing service", "mode": "live"}},
    ),
    Operation(
        "GET",
        "/api/v1/api-keys/",
        "listApiKeys",
        "List API keys, newest first",
        list_keys,
        tags=("api keys",),
        query=PageQuery,
        response=list[ApiKey],
        paginated=True,
        errors=(403,),
        notes=ADMIN_ONLY,
        message="API keys",
    ),
    Operation(
        "DELETE",
        "/api/v1/api-keys/{key_id}",
        "revokeApiKey",
        "Revoke an API key",
        revoke_key,
        tags=("api keys",),
        description="Every gateway process refuses the key within 5 s.",
        path_params=ApiKeyPath,
        response=ApiKey,
        errors=(403,),
        notes=ADMIN_ONLY,
        not_found=KEY_NOT_FOUND,
        message="API key revoked",
    ),
    Operation(
        "POST",
        "/api/v1/webhooks/",
        "createWebhook",
        "Subscribe a URL to delivery outcomes",
        create_hook,
        tags=("webhooks",),
        description="Deliveries are signed with the secret in this answer (X-Herald-Signature: t=...,v1=...).",
        body=WebhookCreate,
        response=WebhookCreated,
        status=201,
        errors=(403,),
        notes=ADMIN_ONLY,
        message="webhook created",
        links={
            "GetWebhook": {"operationId": "getWebhook", "parameters": BY_HOOK},
            "ListDeliveries": {"operationId": "listWebhookDeliveries", "parameters": BY_HOOK},
        },
        examples={"billing": {"url": "https://billing.example.com/herald", "events": ["notification.failed"]}},
    ),
    Operation(
        "GET",
        "/api/v1/webhooks/",
        "listWebhooks",
        "List webhooks",
        list_hooks,
        tags=("webhooks",),
        query=PageQuery,
        response=list[Webhook],
        paginated=True,
        errors=(403,),
        notes=ADMIN_ONLY,
        message="webhooks",
    ),
    Operation(
        "GET",
        "/api/v1/webhooks/{webhook_id}",
        "getWebhook",
        "A webhook",
        get_hook,
        tags=("webhooks",),
        path_params=WebhookPath,
        response=Webhook,
        errors=(403,),
        notes=ADMIN_ONLY,
        not_found=HOOK_NOT_FOUND,
        message="webhook",
    ),
    Operation(
        "DELETE",
        "/api/v1/webhooks/{webhook_id}",
        "deleteWebhook",
        "Delete a webhook",
        delete_hook,
        tags=("webhooks",),
        description="No further deliveries.",
        path_params=WebhookPath,
        response=Webhook,
        errors=(403,),
        notes=ADMIN_ONLY,
        not_found=HOOK_NOT_FOUND,
        message="webhook deleted",
    ),
    Operation(
        "GET",
        "/api/v1/webhooks/{webhook_id}/deliveries",
        "listWebhookDeliveries",
        "A webhook's deliveries",
        list_hook_deliveries,
        tags=("webhooks",),
        path_params=WebhookPath,
        query=PageQuery,
        response=list[Delivery],
        paginated=True,
        errors=(403,),
        notes=ADMIN_ONLY,
        not_found=HOOK_NOT_FOUND,
        message="deliveries",
    ),
]
