"""Routes declared once: an :class:`Operation` names its handler and the Structs of its body, query
string and path, its answer's type, statuses, security and links; :func:`register` mounts it with
validation in front of the handler, and :mod:`web.common.openapi` writes the document from the same
declarations, so what is checked and what is documented cannot drift apart (ARCHITECTURE.md,
"Where each policy lives").

Before the handler runs, in this order (README, "What a send does"): the bearer token and its role
(401/403), the path parameters (one that cannot name anything is a 404, like an unknown id), the
query string, the body (400 naming the field; 413 over 1 MiB). The handler gets what was declared
as keyword arguments (``caller``, ``path``, ``query``, ``body``) and returns the envelope's ``data``
or a :class:`Reply`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from aiohttp import web

from web.common.app_keys import api_keys_key, settings_key
from web.common.auth import authenticate, caller_of, require_admin, require_privileged
from web.common.decoding import convert, decode_body
from web.common.envelope import ApiError, ok

Security = Literal["bearer", "optional", "none"]
#: Which roles may call: any valid token, admin and service tokens, or admin tokens only.
Access = Literal["any", "privileged", "admin"]
Handler = Callable[..., Awaitable[Any]]
ALLOWED = {"privileged": require_privileged, "admin": require_admin}


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler returns when the answer is more than its ``data``."""

    data: Any = None
    status: int | None = None
    message: str | None = None
    meta: Any = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Operation:
    """One method on one path, as served and as documented."""

    method: str
    path: str  # aiohttp's form; a regex in a placeholder ({channel:email|push}) is not documented
    operation_id: str
    summary: str
    handler: Handler
    tags: tuple[str, ...] = ()
    description: str = ""
    body: Any = None  # a Struct (optionally Annotated), decoded from the JSON body
    query: type | None = None  # a Struct, converted from the query string (unknown names ignored)
    path_params: type | None = None  # a Struct, converted from the path's placeholders
    response: Any = None  # the type of the envelope's ``data``; None: data is null
    paginated: bool = False  # ``meta`` is PaginationMeta
    status: int = 200
    also: tuple[int, ...] = ()  # other success statuses with the same body (a replay's 200)
    errors: tuple[int, ...] = ()  # statuses besides those the declaration implies (400, 401, 404, 413, 500)
    notes: Mapping[int, str] = field(default_factory=dict)  # what a status means for this operation
    error_data: Any = None  # the type of ``data`` on an error answer (null by default)
    security: Security = "bearer"
    access: Access = "any"
    not_found: str = "no such resource"  # the message for a path that cannot name anything
    message: str = "ok"  # the envelope's message on success
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    examples: Mapping[str, Any] = field(default_factory=dict)  # request body examples by name
    response_headers: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # by success status
    media: str = "application/json"  # anything else: the handler returns the response itself
    enveloped: bool = True

    def statuses(self) -> list[int]:
        """Every status this operation can answer."""
        found = {self.status, *self.also, *self.errors, 500}
        if self.enveloped:
            found.add(503)  # any store or service the handler needs may be down
        if self.body is not None or self.query is not None:
            found.add(400)
        if self.body is not None:
            found.add(413)
        if self.security != "none":
            found.add(401)
        if self.security == "optional" or self.access != "any":
            found.add(403)
        if self.path_params is not None:
            found.add(404)
        return sorted(found)


def register(app: web.Application, operations: Iterable[Operation]) -> None:
    """Mount each operation on its path with and without the trailing slash (README, "Using it")."""
    for op in operations:
        handler = _endpoint(op)
        bare = op.path.rstrip("/") or "/"
        app.router.add_route(op.method, bare, handler)
        if bare != "/":
            app.router.add_route(op.method, bare + "/", handler)


def _endpoint(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    decoder = msgspec.json.Decoder(op.body) if op.body is not None else None
    query_names = tuple(f.encode_name for f in msgspec.structs.fields(op.query)) if op.query is not None else ()

    async def endpoint(request: web.Request) -> web.StreamResponse:
        inputs: dict[str, Any] = {}
        if op.security != "none":  # auth first: an anonymous caller learns nothing, not even its errors
            inputs["caller"] = caller = await _authenticate(request, op.security)
            if op.access != "any":
                ALLOWED[op.access](caller)
        if op.path_params is not None:
            try:
                inputs["path"] = convert(dict(request.match_info), op.path_params)
            except ApiError:
                raise ApiError("NOT_FOUND", op.not_found) from None
        if op.query is not None:
            query = request.query
            inputs["query"] = convert({n: query[n] for n in query_names if n in query}, op.query)
        if decoder is not None:
            inputs["body"] = decode_body(await request.read(), decoder)
        result = await op.handler(request, **inputs)
        if isinstance(result, web.StreamResponse):
            return result
        if not isinstance(result, Reply):
            return ok(result, message=op.message, status=op.status)
        return ok(
            result.data,
            message=result.message or op.message,
            status=result.status or op.status,
            meta=result.meta,
            headers=dict(result.headers) if result.headers else None,
        )

    endpoint.__name__ = op.operation_id
    return endpoint


async def _authenticate(request: web.Request, security: Security):
    """The caller: a JWT anywhere, an API key where the app takes keys (the gateway)."""
    if security == "optional" and "Authorization" not in request.headers:
        return None
    api_keys = request.app.get(api_keys_key)
    if api_keys is None:
        return caller_of(request, request.app[settings_key])
    return await authenticate(request, request.app[settings_key], api_keys)
