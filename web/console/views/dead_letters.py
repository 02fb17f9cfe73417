"""Dead letters: list, replay one, replay all, purge after a confirmation (README, "Working the
dead-letter queue").

The work is the same as the API's and the CLI's: :mod:`messaging.dead_letters` run as one unit in
the gateway's database threads, replays published through the gateway's publisher and mirrored to
Redis by its status writer, exactly as :mod:`web.gateway.dead_letters` does.
"""

from __future__ import annotations

import pika.exceptions
from aiohttp import web

from messaging import dead_letters
from web.common.app_keys import settings_key
from web.console.pages import PREFIX, audit, db, gateway, pages, paging, redirect, render
from web.console.services import Unavailable
from web.gateway.app_keys import publisher_key, status_writer_key
from web.gateway.publisher import PublishError

LIMIT = 25
HOME = f"{PREFIX}/dead-letters"
OUTCOMES = {
    dead_letters.REPLAYED_OK: "replayed: back on its queue with a fresh retry budget",
    dead_letters.ALREADY_DELIVERED: "already delivered: the stale dead letter was removed",
}


def _url(request: web.Request) -> str | None:
    return gateway(request)[settings_key].rabbitmq_url


async def _run(request: web.Request, fn, *args, **kwargs):
    """``fn`` (pika, peewee, a confirmed publish) as one unit on a database thread."""
    try:
        return await db(request, fn, *args, atomic=False, **kwargs)
    except (pika.exceptions.AMQPError, PublishError, OSError):
        raise Unavailable("broker") from None


def _replayer(request: web.Request) -> dead_letters.Replayer:
    gw = gateway(request)
    return dead_letters.Replayer(publish=gw[publisher_key].publish_blocking, mirror=gw[status_writer_key].mirror)


async def listing(request: web.Request) -> web.Response:
    page, url = paging(request), _url(request)
    total, items = (0, []) if url is None else await _run(request, dead_letters.listing, url, page=page, limit=LIMIT)
    context = {"items": items, "paging": pages(total, page, LIMIT), "in_process_broker": url is None}
    return await render(request, "dead_letters.html", context)


async def replay(request: web.Request) -> web.Response:
    nid = request.match_info["notification_id"]
    url = _url(request)
    if url is None or len(nid) > 64:
        raise web.HTTPNotFound()
    try:
        outcome = await _run(request, _replayer(request).replay_one, url, nid)
    except dead_letters.ReplayError as exc:
        audit(request, "dead letter not replayed", notification_id=nid, reason=exc.code)
        return await redirect(request, HOME, notice=f"{nid} not replayed: {exc}")
    if outcome is None:
        return await redirect(request, HOME, notice=f"{nid} is no longer in the dead-letter queue.")
    audit(request, "dead letter replayed", notification_id=nid, outcome=outcome)
    return await redirect(request, HOME, notice=f"{nid} {OUTCOMES[outcome]}.")


async def replay_all(request: web.Request) -> web.Response:
    url = _url(request)
    if url is None:
        raise web.HTTPNotFound()
    outcomes = await _run(request, _replayer(request).replay_all, url)
    counts = {outcome: len(ids) for outcome, ids in outcomes.items()}
    audit(request, "dead letters replayed", outcomes=counts)
    summary = ", ".join(f"{n} {outcome.replace('_', ' ').lower()}" for outcome, n in sorted(counts.items()))
    return await redirect(request, HOME, notice=f"Replay all: {summary or 'nothing to replay'}.")


async def purge_confirm(request: web.Request) -> web.Response:
    url = _url(request)
    depth = 0 if url is None else await _run(request, _depth, url)
    return await render(request, "purge.html", {"depth": depth})


def _depth(url: str) -> int:
    with dead_letters.DeadLetterQueue(url) as dlq:
        return dlq.depth()


def _purge(url: str) -> int:
    with dead_letters.DeadLetterQueue(url) as dlq:
        return dlq.purge()


async def purge(request: web.Request) -> web.Response:
    url = _url(request)
    form = await request.post()
    if url is None or form.get("confirm") != "yes":
        return await redirect(request, f"{HOME}/purge")
    purged = await _run(request, _purge, url)
    audit(request, "dead letters purged", purged=purged)
    return await redirect(request, HOME, notice=f"Purged {purged} dead letter(s); their notifications stay failed.")
