"""A TCP proxy in the test process that a test can cut, to take a dependency away without stopping it.

Usage::

    with TcpProxy("127.0.0.1", 6379) as proxy:      # listens on 127.0.0.1:proxy.port
        env["REDIS_URL"] = f"redis://127.0.0.1:{proxy.port}/0"
        ...
        proxy.cut()        # every open connection is closed, new ones are refused: the service "stopped"
        proxy.restore()    # connections are accepted and forwarded again: the service "restarted"

The proxy runs its own asyncio loop in a daemon thread, so blocking calls in the test (polling,
pika, psycopg2) never stall the traffic it forwards. While cut, the listening socket is closed, so a
client sees "connection refused", exactly as with a stopped server; ``restore`` listens again on
the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future

from tests.support.ports import free_port

_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target_host, self.target_port = target_host, target_port
        self.listen_host = listen_host
        self.port: int = free_port()  # kept for the proxy's whole life (restore listens on it again)
        self.connections = 0  # client connections accepted so far
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._cut = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()
        self._call(self._listen())

    # -- public API (thread-safe; each call returns once the change is in effect) --

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Close every open connection and refuse new ones."""
        self._call(self._do_cut())

    def restore(self) -> None:
        """Accept and forward connections again, on the same port."""
        self._call(self._do_restore())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._do_cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the loop's side --

    def _call(self, coro, timeout: float = 10.0):
        future: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.listen_host, self.port, reuse_address=True)

    async def _do_cut(self) -> None:
        self._cut = True
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    async def _do_restore(self) -> None:
        if self._server is None:
            await self._listen()
        self._cut = False

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._cut:
            _abort(client_writer)
            return
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), 5
            )
        except (OSError, TimeoutError):
            _abort(client_writer)
            return
        if self._cut:  # cut while connecting
            _abort(client_writer)
            _abort(upstream_writer)
            return
        self._writers.update((client_writer, upstream_writer))
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        finally:
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                _abort(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            pass
        finally:
            _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once (RST rather than a graceful FIN, as a dead server's kernel would on the next write)."""
    with contextlib.suppress(Exception):  # already closed: nothing to do
        writer.transport.abort()
