"""The progress line of ``make bench`` on stderr: the phase and the time elapsed.

The run takes minutes, so it says what it is doing: one line per phase, and on a terminal the
current line keeps its clock ticking every second.
"""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.phase = ""
        self.tty = stream.isatty()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        if self.tty:
            self._ticker.start()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _line(self) -> str:
        minutes, seconds = divmod(int(self.elapsed()), 60)
        return f"[bench {minutes:2d}:{seconds:02d}] {self.phase}"

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self.stream.write("\r\033[K" + self._line())
                self.stream.flush()

    def __call__(self, phase: str) -> None:
        """Start a new phase."""
        with self._lock:
            if self.tty and self.phase:
                self.stream.write("\n")  # the finished phase keeps its line
            self.phase = phase
            self.stream.write(self._line() + ("" if self.tty else "\n"))
            self.stream.flush()

    def note(self, text: str) -> None:
        """A result, on a line of its own under the phase."""
        with self._lock:
            self.stream.write(("\r\033[K" if self.tty else "") + f"{'':14}{text}\n")
            self.stream.write(self._line() if self.tty else "")
            self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
