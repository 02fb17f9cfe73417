"""The gateway curve of ``make bench``: accepted sends per second and latency against concurrency.

At each concurrency wrk loads the bare aiohttp floor (``http_floor.py``) and then the gateway with
the same POST, so every gateway figure has its reference from the same minute: accepted/s as a
ratio to the floor's req/s, p99 in floor request-times (1 / floor req/s). The CPU every process
spent in the gateway window, divided by the sends accepted, is where the time goes; the shared
services' rate in the floor window, where Herald was idle, is their background (README,
"Benchmarks").
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import ExitStack
from pathlib import Path

from scripts.bench import config, proc
from scripts.bench.stack import Herald, port_open
from tests.support.ports import free_port
from tests.support.processes import BIN, herald_process, wait_for

LUA = Path(__file__).with_name("send.lua")
HTTP_FLOOR = Path(__file__).with_name("http_floor.py")


def wrk(url: str, lua_env: dict[str, str], *, connections: int, duration: int, run: str, batch: int = 0) -> dict:
    """One wrk run of the send script; ``run`` makes its request ids unique; ``batch`` > 0 POSTs
    that many sends per request to the batch endpoint."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout=5s",
            f"--script={LUA}",
            url,
        ],
        env={**os.environ, **lua_env, "BENCH_RUN": run, "BENCH_BATCH": str(batch)},
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    result = json.loads(line.removeprefix("BENCH_JSON "))
    result["accepted"] = result["accepted_items"] if batch else result["statuses"].get("202", 0)
    result["accepted_per_s"] = round(result["accepted"] / result["duration_s"], 1)
    return result


def start_floor(stack: ExitStack, logs: Path) -> tuple[str, int]:
    port = free_port()
    floor = stack.enter_context(
        herald_process([str(BIN / "python"), str(HTTP_FLOOR), str(port)], {}, logs / "http-floor.log")
    )
    wait_for(lambda: port_open(port), timeout=20, what="the aiohttp floor")
    return f"http://127.0.0.1:{port}", floor.pid


def _measured(herald: Herald, roots: dict[str, int], url: str, **load) -> tuple[dict, dict]:
    """A wrk run against ``url`` and the CPU every process spent during it (``proc.spent``)."""
    before = proc.snapshot(roots, herald.backends())
    result = wrk(url, herald.lua_env, **load)
    return result, proc.spent(before, proc.snapshot(roots, herald.backends()))


def curve(herald: Herald, floor_url: str, floor_pid: int, progress) -> list[dict]:
    roots = {**herald.pids, "floor": floor_pid}
    progress(f"gateway: warm-up, {config.WARMUP_S} s")
    wrk(herald.gateway, herald.lua_env, connections=config.REFERENCE_CONCURRENCY, duration=config.WARMUP_S, run="w")
    wrk(floor_url, herald.lua_env, connections=config.REFERENCE_CONCURRENCY, duration=1, run="fw")
    points = []
    for c in config.CONCURRENCIES:
        progress(f"gateway: bare aiohttp floor, {c} connections, {config.DURATION_S} s")
        floor, floor_window = _measured(
            herald, roots, floor_url, connections=c, duration=config.DURATION_S, run=f"f{c}"
        )
        progress(f"gateway: Herald, {c} connections, {config.DURATION_S} s")
        herald.empty_queue()
        gateway, window = _measured(
            herald, roots, herald.gateway, connections=c, duration=config.DURATION_S, run=f"g{c}"
        )
        request_time_ms = 1000 / floor["rps"]
        point = {
            "connections": c,
            "floor": floor,
            "gateway": gateway,
            "ratio": round(gateway["accepted_per_s"] / floor["rps"], 3),
            "p99_floor_request_times": round(gateway["p99_ms"] / request_time_ms),
            "cpu_ms_per_send": proc.per_unit(window, gateway["accepted"], background=floor_window),
            "floor_cpu_ms_per_request": proc.per_unit(floor_window, floor["requests"])["floor"],
            "windows": {"floor": floor_window, "gateway": window},
        }
        points.append(point)
        progress.note(
            f"floor {floor['rps']:,.0f} req/s, Herald {gateway['accepted_per_s']:,.0f} accepted/s = "
            f"{point['ratio']:.3f} of it; p50 {gateway['p50_ms']:.0f} ms, p99 {gateway['p99_ms']:.0f} ms"
        )
    return points


def memory(herald: Herald) -> dict[str, list[dict]]:
    return {role: proc.memory(pid) for role, pid in herald.pids.items()}


def batches(herald: Herald, progress) -> list[dict]:
    """Sends accepted per second through the batch endpoint, beside single sends at the reference
    concurrency measured just before it: the batch's reference is the gateway itself."""
    points = []
    for size in config.BATCH_SIZES:
        c, seconds = config.REFERENCE_CONCURRENCY, config.DURATION_S
        progress(f"batch: single sends, {c} connections, {seconds} s")
        herald.empty_queue()
        single, single_window = _measured(
            herald, herald.pids, herald.gateway, connections=c, duration=seconds, run=f"bs{size}"
        )
        progress(f"batch: {size} sends per request, {config.BATCH_CONNECTIONS} connections, {seconds} s")
        herald.empty_queue()
        batch, window = _measured(
            herald,
            herald.pids,
            herald.gateway,
            connections=config.BATCH_CONNECTIONS,
            duration=seconds,
            run=f"b{size}",
            batch=size,
        )
        ratio = round(batch["accepted_per_s"] / single["accepted_per_s"], 2) if single["accepted_per_s"] else None
        cpu = proc.per_unit(window, batch["accepted"], herald.background)
        points.append({"size": size, "connections": config.BATCH_CONNECTIONS, "single": single, "batch": batch})
        points[-1] |= {
            "ratio": ratio,
            "cpu_ms_per_item": cpu,
            "single_cpu_ms_per_send": proc.per_unit(single_window, single["accepted"], herald.background),
            "ceiling_per_s": {"all": proc.ceiling(cpu), "without gateway": proc.ceiling(cpu, gateway=0.0)},
        }
        progress.note(
            f"batches of {size}: {batch['accepted_per_s']:,.0f} sends accepted/s, single sends "
            f"{single['accepted_per_s']:,.0f}/s: {ratio}x; p50 {batch['p50_ms']:.0f} ms per batch"
        )
    return points
