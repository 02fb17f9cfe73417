"""The SMTP providers ``make bench`` delivers to, and how many mails each has taken.

At 0 and 1 s of latency the provider is Postfix's ``smtp-sink`` (C, ``-w`` whole seconds); at other
latencies it is ``slow_sink.py``, which only sleeps and answers. Both print a running ``mesg=N``
counter, read here from the end of their log, so Herald and the thinnest worker are counted the
same way, as mails the provider accepted (README, "Benchmarks").
"""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.stack import port_open
from tests.support.ports import free_port
from tests.support.processes import BIN, herald_process, wait_for

SMTP_SINK = "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else (shutil.which("smtp-sink") or "")
SLOW_SINK = Path(__file__).with_name("slow_sink.py")
_COUNTER = re.compile(rb"mesg=(\d+)")


@dataclass
class Sink:
    port: int
    pid: int
    log: Path
    latency_ms: int
    kind: str

    def count(self) -> int:
        """Mails accepted so far: the last counter in the log."""
        try:
            with open(self.log, "rb") as f:
                f.seek(0, 2)
                f.seek(max(f.tell() - 256, 0))
                found = _COUNTER.findall(f.read())
        except OSError:
            return 0
        return int(found[-1]) if found else 0


@contextmanager
def sink(logs: Path, latency_ms: int = 0):
    """A provider answering DATA after ``latency_ms``: smtp-sink for whole seconds, else the asyncio sink."""
    port = free_port()
    log = logs / f"sink-{latency_ms}ms-{port}.log"
    if latency_ms % 1000 == 0:
        args, kind = [SMTP_SINK, "-c", "-u", "nobody"], "smtp-sink (C)"
        if latency_ms:
            args += ["-w", str(latency_ms // 1000)]
        args += [f"127.0.0.1:{port}", "1000"]
    else:
        args, kind = [str(BIN / "python"), str(SLOW_SINK), str(port), str(latency_ms)], "asyncio sink (Python)"
    with herald_process(args, {}, log) as proc:
        wait_for(lambda: port_open(port), timeout=20, what=f"the SMTP sink on {port}")
        yield Sink(port, proc.pid, log, latency_ms, kind)
