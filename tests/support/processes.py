"""Herald's own processes started as an operator would, with the test's environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def process_env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "TZ")}
    base.setdefault("PATH", "/usr/bin:/bin")
    base["PYTHONPATH"] = str(ROOT)
    return {**base, **env}


@contextmanager
def herald_process(args: list[str], env: dict[str, str], log_path: Path):
    """Start ``args`` from the repo root; stop it with SIGTERM (SIGKILL after 15 s) on exit."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=process_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def worker(
    env: dict[str, str],
    log_path: Path,
    *,
    queues: tuple[str, ...] = ("email.queue", "push.queue"),
    processes: int = 1,
    threads: int = 2,
):
    """``dramatiq actors`` on the given queues, as the README starts the workers."""
    args = [
        str(BIN / "dramatiq"),
        "actors",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--queues",
        *queues,
    ]
    with herald_process(args, env, log_path) as proc:
        yield proc


def run_dlq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``python -m scripts.dlq ARGS`` as an operator runs it, with no terminal (so no prompt)."""
    return subprocess.run(
        [sys.executable, "-m", "scripts.dlq", *args],
        cwd=ROOT,
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
