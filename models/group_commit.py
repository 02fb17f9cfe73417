"""Group commit: the writes of many threads made by one of them, in one statement and one round trip.

A worker process runs many threads, and each ends its delivery with the same recording: an UPDATE
and a Redis round trip. Alone, each pays a statement's fixed cost, and PostgreSQL's parsing,
planning and committing of the recording cost several times the row's own update (README, "Where
the time goes"). Here the first thread to arrive while no recording is under way writes for every
thread waiting, and the threads that arrive meanwhile go together in the next one. No thread waits
for a timer: a lone thread writes at once, and under load the groups grow by themselves.

Each caller returns only once its own item is written, with its own result or the group's error,
so whatever the caller does next (a worker's ack) still follows the write.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: The most items one write takes; the rest wait for the next.
MAX_GROUP = 64


class _Entry(Generic[Item, Result]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Parameters:
    write: writes a group of items and returns one result per item, in their order; what it raises
        is raised to every caller of the group.
    max_group: the most items one call of ``write`` takes.
    """

    def __init__(self, write: Callable[[list[Item]], Sequence[Result]], *, max_group: int = MAX_GROUP) -> None:
        self._write = write
        self._max_group = max_group
        self._changed = threading.Condition()
        self._waiting: deque[_Entry[Item, Result]] = deque()
        self._writing = False

    def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is waiting; blocks until it is written."""
        entry: _Entry[Item, Result] = _Entry(item)
        with self._changed:
            self._waiting.append(entry)
        while True:
            with self._changed:
                while self._writing and not entry.done:
                    self._changed.wait()
                if entry.done:
                    break
                self._writing = True
                group = [self._waiting.popleft() for _ in range(min(self._max_group, len(self._waiting)))]
            self._write_group(group)
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]

    def _write_group(self, group: list[_Entry[Item, Result]]) -> None:
        results: Sequence[Result] = ()
        error: BaseException | None = None
        try:
            results = self._write([entry.item for entry in group])
            if len(results) != len(group):
                error = RuntimeError(f"a group of {len(group)} was written with {len(results)} results")
        except BaseException as exc:  # every waiting caller learns of it, then the writer raises it too
            error = exc
        with self._changed:
            for n, entry in enumerate(group):
                entry.error, entry.result = (error, None) if error is not None else (None, results[n])
                entry.done = True
            self._writing = False
            self._changed.notify_all()
