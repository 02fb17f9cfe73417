"""``POST /api/v1/notifications/batch``: up to 1,000 sends in one request, each judged exactly as if
it had been sent alone (README, "Batches").

Every item goes through the same :class:`web.gateway.sending.SendPipeline` as a single send, all
at once: its own validation, idempotency, checks and rate limit, and its own answer. Sending them
together is what makes a batch cheap: the recorder gathers the accepted ones into multi-row
INSERTs and publishes them across its channels, so their confirms arrive together.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import web

from web.common.app_keys import correlation_id_key
from web.common.auth import Caller
from web.common.decoding import field_message
from web.common.envelope import STATUS_OF, ApiError
from web.gateway.app_keys import pipeline_key
from web.gateway.schemas import BatchRequest, SendRequest

log = logging.getLogger(__name__)

_ITEM = msgspec.json.Decoder(SendRequest)


async def send_batch(request: web.Request, *, caller: Caller, body: BatchRequest) -> dict:
    pipeline, correlation_id = request.app[pipeline_key], request[correlation_id_key]

    async def one(index: int, raw: msgspec.Raw) -> dict:
        try:
            item = _decode(raw)
            accepted = await pipeline.send(caller, item, correlation_id=correlation_id)
        except ApiError as exc:
            return _item(index, exc.status, None, exc.code, exc.message)
        except Exception:
            log.exception("batch item %d failed", index)
            return _item(index, STATUS_OF["INTERNAL_ERROR"], None, "INTERNAL_ERROR", "internal error")
        if accepted.replayed:
            return _item(index, 200, accepted.data, None, "already accepted (idempotent replay)")
        return _item(index, 202, accepted.data, None, "notification accepted")

    results = await asyncio.gather(*(one(i, raw) for i, raw in enumerate(body.notifications)))
    return {"results": list(results)}


def _decode(raw: msgspec.Raw) -> SendRequest:
    try:
        return _ITEM.decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError("VALIDATION_ERROR", field_message(exc, SendRequest)) from None
    except (msgspec.DecodeError, RecursionError):
        raise ApiError("VALIDATION_ERROR", "the item is not valid JSON") from None


def _item(index: int, status: int, data, error: str | None, message: str) -> dict:
    return {"index": index, "status_code": status, "data": data, "error": error, "message": message}
