"""A slow SMTP provider for ``make bench``: answers DATA after a fixed delay in milliseconds.

Postfix's ``smtp-sink -w`` waits whole seconds only, so a 200 ms relay is this asyncio sink. It
only sleeps and answers, and counts as ``smtp-sink -c`` does (``mesg=N`` on stdout), so the same
reader serves both. Its own CPU is measured in the same window as its rate; the bench prints how
many mails it could take per CPU second beside the bound it is driven at, so the figure shows it
is not what limits the rate (README, "Benchmarks"). Usage: ``python scripts/bench/slow_sink.py PORT MS``.
"""

import asyncio
import sys

EHLO = b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10240000\r\n"
delivered = 0


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    global delivered
    writer.write(b"220 bench-sink ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(EHLO)
            elif verb == b"DATA":
                await asyncio.sleep(delay_s)  # where smtp-sink -w waits
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                while (body := await reader.readline()) not in (b".\r\n", b""):
                    pass
                if not body:
                    break  # the client went away mid-message: nothing was accepted
                delivered += 1
                sys.stdout.write(f"mesg={delivered}\r")
                sys.stdout.flush()
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                writer.write(b"250 2.0.0 Ok\r\n")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port: int, delay_ms: int) -> None:
    server = await asyncio.start_server(lambda r, w: session(r, w, delay_ms / 1000), "127.0.0.1", port, backlog=1000)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
