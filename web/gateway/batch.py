"""``POST /api/v1/notifications/batch``: up to 1,000 sends in one request, each judged exactly as if
it had been sent alone (README, "Batches").

Every item goes through the same :class:`web.gateway.sending.SendPipeline` as a single send, all
at once: its own validation, idempotency, checks and rate limit, and its own answer. Sending them
together is what makes a batch cheap: the Redis reads and claims of every item share one round
trip, concurrent lookups of one user or template share one call to its service, and the recorder
gathers the accepted items into multi-row INSERTs whose publishes are confirmed together.
"""

from __future__ import annotations

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
    items = [_decode(raw) for raw in body.notifications]
    outcomes = await request.app[pipeline_key].send_many(caller, items, correlation_id=request[correlation_id_key])
    return {"results": [_result(index, outcome) for index, outcome in enumerate(outcomes)]}


def _result(index: int, outcome) -> dict:
    if isinstance(outcome, ApiError):
        return _item(index, outcome.status, None, outcome.code, outcome.message)
    if isinstance(outcome, BaseException):
        log.error("batch item %d failed", index, exc_info=outcome)
        return _item(index, STATUS_OF["INTERNAL_ERROR"], None, "INTERNAL_ERROR", "internal error")
    if outcome.replayed:
        return _item(index, 200, outcome.data, None, "already accepted (idempotent replay)")
    return _item(index, 202, outcome.data, None, "notification accepted")


def _decode(raw: msgspec.Raw) -> SendRequest | ApiError:
    try:
        return _ITEM.decode(raw)
    except msgspec.ValidationError as exc:
        return ApiError("VALIDATION_ERROR", field_message(exc, SendRequest))
    except (msgspec.DecodeError, RecursionError):
        return ApiError("VALIDATION_ERROR", "the item is not valid JSON")


def _item(index: int, status: int, data, error: str | None, message: str) -> dict:
    return {"index": index, "status_code": status, "data": data, "error": error, "message": message}
