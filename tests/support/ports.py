"""Ports for the servers tests start."""

from __future__ import annotations

import random
import socket

#: Ports the tests listen on: below Linux's ephemeral range (32768-60999). A server a test stops and
#: starts again must find its port free, and a port in that range can meanwhile become the local
#: port of an outgoing connection; on loopback, a client that keeps dialling the closed port can
#: even connect to itself from it (TCP simultaneous open), holding it until it gives up.
TEST_PORTS = range(20000, 32768)


def free_port() -> int:
    """A TCP port nobody listens on right now (also handy for 'connection refused' tests)."""
    for _ in range(1000):
        port = random.choice(TEST_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {TEST_PORTS}")
