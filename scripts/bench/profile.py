"""Where the time goes inside Herald's processes: py-spy samples, summed by package and by module.

Only with ``BENCH_PROFILE=1`` and py-spy installed (``pip install py-spy``; a tool for this
measurement, not a dependency of Herald). The profiled load is an extra run after the measured
ones, so sampling never touches a figure the bench reports (README, "Benchmarks"). Only samples
of the thread holding the GIL are kept (``--gil``): a thread waiting on a socket or a lock has let
it go, so the shares are shares of the CPU spent in Python, not of time spent waiting.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

from tests.support.processes import BIN, ROOT

#: Frames every sample of a process passes through: no information in their inclusive share.
ENTRY_POINTS = {"web/common/run.py", "web/gateway/__main__.py", "web/users/__main__.py", "web/templates/__main__.py"}


def available() -> str | None:
    return shutil.which("py-spy") or (str(BIN / "py-spy") if (BIN / "py-spy").exists() else None)


def start(pid: int, seconds: int, out: Path) -> subprocess.Popen:
    """Sample a process tree (``--subprocesses``) for ``seconds``, collapsed stacks into ``out``."""
    args = [available() or "py-spy", "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds)]
    args += ["--rate", "100", "--gil", "--format", "raw", "--full-filenames", "--function", "--nonblocking"]
    args += ["-o", str(out)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _where(frame: str) -> tuple[str, str]:
    """(package, Herald module or "") of one ``function (file:line)`` frame."""
    path = frame.rpartition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py"), ""
    if path.startswith(str(ROOT) + "/"):
        module = path.removeprefix(str(ROOT) + "/")
        return "herald", module
    if "/lib/python3" in path:
        return "stdlib " + path.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py"), ""
    return path or "?", ""


def summarise(raw: Path, top: int = 12) -> dict:
    """Self time by package of the innermost frame, inclusive time by Herald module, top functions."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if " (" in f and not f.startswith("process ")]
        if not frames:
            continue
        n = int(count)
        total += n
        package, _ = _where(frames[-1])
        own[package] += n
        functions[frames[-1].split(" (", 1)[0] + " [" + package + "]"] += n
        for module in {m for f in frames if (m := _where(f)[1]) and m not in ENTRY_POINTS}:
            inclusive[module] += n

    def share(counter: Counter[str]) -> dict[str, float]:
        return {k: round(v / total, 3) for k, v in counter.most_common(top)} if total else {}

    return {
        "samples": total,
        "self_by_package": share(own),
        "inclusive_by_herald_module": share(inclusive),
        "top_functions": share(functions),
    }
