"""One webhook attempt against a real local HTTP receiver: signed, bounded in time, never redirected,
and sent to the address that was checked (README, "Webhooks")."""

from __future__ import annotations

import asyncio
import socket
import time

from aiohttp import web

from providers.webhook import WebhookSender
from tests.support.ports import free_port
from tests.support.webhook_receiver import start_receiver

SECRET = "whsec_" + "s" * 43
BODY = b'{"id":"e-1","type":"notification.delivered"}'


def pinned(address: str):
    """A name lookup answering ``address`` for any name, counting its calls."""
    calls = []

    def getaddrinfo(host, port, type=0):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    getaddrinfo.calls = calls
    return getaddrinfo


async def post(sender: WebhookSender, url: str, body: bytes = BODY, event_id: str = "e-1"):
    return await asyncio.to_thread(sender.post, url, body, secret=SECRET, event_id=event_id)


async def test_a_2xx_is_a_success_and_the_request_is_signed(aiohttp_server):
    receiver = await start_receiver(aiohttp_server)
    receiver.secrets["/in"] = SECRET
    outcome = await post(WebhookSender(allow_private=True, timeout_s=5), receiver.url("/in"))
    assert outcome.ok and outcome.status_code == 200
    [hit] = receiver.hits
    assert hit.verified is True and hit.body == BODY
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Herald-Event-ID"] == "e-1"


async def test_other_answers_are_retryable_failures_that_quote_the_receiver(aiohttp_server):
    receiver = await start_receiver(aiohttp_server)
    receiver.script("/in", "500", "404", "429")
    sender = WebhookSender(allow_private=True, timeout_s=5)
    first, second, third = [await post(sender, receiver.url("/in")) for _ in range(3)]
    assert (first.ok, first.retryable, first.status_code) == (False, True, 500)
    assert first.error == "HTTP 500: answer 500" and first.reason == "webhook_http_500"
    assert (second.status_code, second.retryable) == (404, True)
    assert third.status_code == 429


async def test_retry_after_of_a_429_is_kept(aiohttp_server):
    async def busy(request):
        return web.Response(status=429, headers={"Retry-After": "7"})

    app = web.Application()
    app.router.add_post("/in", busy)
    server = await aiohttp_server(app, host="127.0.0.1")
    outcome = await post(WebhookSender(allow_private=True, timeout_s=5), str(server.make_url("/in")))
    assert outcome.retry_after_s == 7


async def test_redirects_are_not_followed(aiohttp_server):
    receiver = await start_receiver(aiohttp_server)

    async def moved(request):
        raise web.HTTPFound(receiver.url("/elsewhere"))

    app = web.Application()
    app.router.add_post("/in", moved)
    server = await aiohttp_server(app, host="127.0.0.1")
    outcome = await post(WebhookSender(allow_private=True, timeout_s=5), str(server.make_url("/in")))
    assert (outcome.ok, outcome.status_code, outcome.retryable) == (False, 302, True)
    await asyncio.sleep(0.2)
    assert receiver.hits == []


async def test_no_answer_within_the_timeout_is_a_retryable_timeout(aiohttp_server):
    receiver = await start_receiver(aiohttp_server)
    receiver.script("/slow", "sleep:3")
    started = time.monotonic()
    outcome = await post(WebhookSender(allow_private=True, timeout_s=1), receiver.url("/slow"))
    assert time.monotonic() - started < 2
    assert (outcome.ok, outcome.retryable, outcome.reason) == (False, True, "webhook_timeout")
    assert outcome.error == "no answer within 1 s"


async def test_a_receiver_answering_one_byte_at_a_time_is_cut_at_the_deadline():
    """Each byte comes well within a socket timeout, so only a bound on the whole attempt stops it."""
    port = free_port()
    stop = asyncio.Event()

    async def drip(reader, writer):
        await reader.read(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
            if stop.is_set():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)
        writer.close()

    server = await asyncio.start_server(drip, "127.0.0.1", port)
    try:
        started = time.monotonic()
        outcome = await post(WebhookSender(allow_private=True, timeout_s=1), f"http://127.0.0.1:{port}/in")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        server.close()
    assert outcome.reason == "webhook_timeout" and outcome.retryable
    assert elapsed < 1.8, elapsed


async def test_a_refused_connection_is_retryable():
    outcome = await post(WebhookSender(allow_private=True, timeout_s=2), f"http://127.0.0.1:{free_port()}/in")
    assert (outcome.ok, outcome.retryable, outcome.reason) == (False, True, "webhook_connection")


async def test_the_connection_goes_to_the_checked_address_and_the_name_is_looked_up_once(aiohttp_server):
    receiver = await start_receiver(aiohttp_server)
    port = receiver.base.rsplit(":", 1)[1]
    lookup = pinned("127.0.0.1")
    sender = WebhookSender(allow_private=True, timeout_s=5, getaddrinfo=lookup)
    # the name exists nowhere but in the checked answer: reaching the receiver proves the connection
    # went to the checked address, not to a lookup of its own
    outcome = await post(sender, f"http://hooks.receiver.invalid:{port}/in")
    assert outcome.ok
    assert lookup.calls == ["hooks.receiver.invalid"]
    [hit] = receiver.hits
    assert hit.headers["Host"] == f"hooks.receiver.invalid:{port}"


async def test_an_address_refused_at_send_time_is_final_and_nothing_is_sent(aiohttp_server):
    receiver = await start_receiver(aiohttp_server)
    port = receiver.base.rsplit(":", 1)[1]
    # the name now points at the metadata address: refused before any connection, never retried
    sender = WebhookSender(allow_private=True, timeout_s=5, getaddrinfo=pinned("169.254.169.254"))
    outcome = await post(sender, f"http://hooks.receiver.invalid:{port}/in")
    assert (outcome.ok, outcome.retryable, outcome.reason) == (False, False, "webhook_address_refused")
    # a receiver on loopback, with private addresses not allowed
    outcome = await post(WebhookSender(allow_private=False, timeout_s=5), receiver.url("/in"))
    assert (outcome.retryable, outcome.reason) == (False, "webhook_address_refused")
    assert receiver.hits == []


async def test_a_name_that_does_not_resolve_is_worth_a_retry():
    def nowhere(host, port, type=0):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    outcome = await post(WebhookSender(allow_private=False, timeout_s=2, getaddrinfo=nowhere), "https://x.invalid/")
    assert (outcome.ok, outcome.retryable, outcome.reason) == (False, True, "webhook_unresolvable")
