"""What the machine and each process spend, read from ``/proc``.

CPU seconds per process over a measured window, divided by what the window achieved (accepted
sends, delivered mails), say where the time goes (README, "Benchmarks"). PostgreSQL, Redis and
RabbitMQ are shared with whatever else runs on the machine: PostgreSQL is counted as the backends
of the bench's own database, Redis and the RabbitMQ server net of their rate in a window where
Herald was idle. The machine's own busy and stolen time is recorded beside every window, since
other work on it changes every absolute figure.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")
#: The shared services counted net of their idle rate, found by process name (and, for the
#: RabbitMQ server, a word of its command line, which ``rabbitmqctl``'s own VM lacks).
SHARED = {"rabbitmq": ("beam.smp", b"rabbit boot"), "redis": ("redis-server", b"")}


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, user + system ticks, name) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    close = text.rindex(")")
    rest = text[close + 2 :].split()
    return int(rest[1]), int(rest[11]) + int(rest[12]), text[text.index("(") + 1 : close]


def _table() -> dict[int, tuple[int, int, str]]:
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            found[int(entry.name)] = stat
    return found


def _tree(root: int, table: dict[int, tuple[int, int, str]]) -> set[int]:
    pids, grew = {root} if root in table else set(), True
    while grew:
        more = {pid for pid, (ppid, _, _) in table.items() if ppid in pids} - pids
        pids |= more
        grew = bool(more)
    return pids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def groups(roots: dict[str, int], pids: dict[str, set[int]] | None = None) -> dict[str, set[int]]:
    """Each of our process trees (by root pid), each shared service (by name) and the groups given
    by pid (a database's backends), as sets of pids."""
    table = _table()
    found = {name: _tree(pid, table) for name, pid in roots.items()}
    for name, (comm, word) in SHARED.items():
        found[name] = {pid for pid, (_, _, c) in table.items() if c == comm and word in _cmdline(pid)}
    return found | (pids or {})


def _machine() -> tuple[int, int, int]:
    """(busy, steal, total) ticks of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal, sum(fields)


@dataclass
class Snapshot:
    at: float
    ticks: dict[str, dict[int, int]]
    machine: tuple[int, int, int]
    children_s: float = field(default=0.0)


def snapshot(roots: dict[str, int], pids: dict[str, set[int]] | None = None) -> Snapshot:
    table = _table()
    ticks = {name: {p: table[p][1] for p in found if p in table} for name, found in groups(roots, pids).items()}
    usage = os.times()
    return Snapshot(time.monotonic(), ticks, _machine(), usage.children_user + usage.children_system)


def spent(before: Snapshot, after: Snapshot) -> dict:
    """CPU seconds per group between two snapshots (a process started meanwhile counts whole), the
    wall time, and the machine's busy cores and stolen share over it. ``waited_children`` is the CPU
    of child processes that ended meanwhile (wrk, when it ran in the window)."""
    cpu = {
        name: sum(t - before.ticks.get(name, {}).get(pid, 0) for pid, t in pids.items()) / CLK
        for name, pids in after.ticks.items()
    }
    wall = after.at - before.at
    busy, steal, total = (a - b for a, b in zip(after.machine, before.machine, strict=True))
    return {
        "wall_s": round(wall, 3),
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "waited_children_cpu_s": round(after.children_s - before.children_s, 3),
        "machine_busy_cores": round(busy / CLK / wall, 2) if wall else 0.0,
        "machine_steal_share": round(steal / total, 3) if total else 0.0,
    }


def per_unit(window: dict, units: int, background: dict | None = None) -> dict[str, float]:
    """CPU milliseconds per unit (send, delivery) of each group; shared services net of the rate
    they ran at in ``background`` (a window where Herald was idle), never below zero."""
    out = {}
    for name, seconds in window["cpu_s"].items():
        if background and name in SHARED and background["wall_s"]:
            seconds -= background["cpu_s"].get(name, 0.0) / background["wall_s"] * window["wall_s"]
        out[name] = round(max(seconds, 0.0) * 1000 / units, 3) if units else 0.0
    if window.get("waited_children_cpu_s"):
        out["load generator"] = round(window["waited_children_cpu_s"] * 1000 / units, 3) if units else 0.0
    return out


def ceiling(ms_per_unit: dict[str, float], **instead: float) -> int:
    """Units per second this machine's cores give at these CPU costs per unit, with the costs of
    the groups named in ``instead`` replaced: the rate no code in the other groups can pass (with
    ``gateway=0``, what RabbitMQ, PostgreSQL, Redis and the load generator need per send)."""
    total = sum({**ms_per_unit, **instead}.values())
    return round((os.cpu_count() or 1) * 1000 / total) if total else 0


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def memory(root: int) -> list[dict]:
    """VmRSS and thread count of every process of one tree, the root first (for a forking service,
    the parent that only watches its children; for dramatiq, the parent of the worker processes)."""
    table = _table()
    found = []
    for pid in sorted(_tree(root, table), key=lambda p: (p != root, p)):
        status = _status(pid)
        if "VmRSS" in status:
            rss = round(int(status["VmRSS"].split()[0]) / 1024, 1)
            found.append({"pid": pid, "root": pid == root, "rss_mib": rss, "threads": int(status["Threads"])})
    return found
