"""Group commit, with real threads: a lone caller writes at once, callers arriving during a write go
together in the next, each gets its own result or the group's error, and nothing is written twice
or left behind."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from models.group_commit import GroupCommit


class Writes:
    """A write function that records its groups; the first group can be held until released."""

    def __init__(self, *, hold_first: bool = False, fail_on: str | None = None) -> None:
        self.groups: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.hold_first = hold_first
        self.fail_on = fail_on

    def __call__(self, items: list[str]) -> list[str]:
        self.groups.append(list(items))
        if self.hold_first and len(self.groups) == 1:
            self.started.set()
            assert self.release.wait(10)
        if self.fail_on in items:
            raise ConnectionError("the database went away")
        return [f"written {item}" for item in items]


def queued(commit: GroupCommit, n: int) -> None:
    """Wait until ``n`` callers are queued behind the write under way."""
    deadline = time.monotonic() + 10
    while len(commit._waiting) < n:
        assert time.monotonic() < deadline, "callers did not queue"
        time.sleep(0.005)


def test_a_lone_caller_writes_at_once_in_a_group_of_one():
    writes = Writes()
    commit = GroupCommit(writes)
    assert commit.submit("a") == "written a"
    assert commit.submit("b") == "written b"
    assert writes.groups == [["a"], ["b"]]


def test_callers_arriving_during_a_write_go_together_in_the_next_and_get_their_own_results():
    writes = Writes(hold_first=True)
    commit = GroupCommit(writes)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(commit.submit, "first")
        assert writes.started.wait(10)
        later = {item: pool.submit(commit.submit, item) for item in ("b", "c", "d", "e", "f")}
        queued(commit, 5)
        writes.release.set()
        assert first.result(10) == "written first"
        assert {item: f.result(10) for item, f in later.items()} == {item: f"written {item}" for item in later}
    assert writes.groups[0] == ["first"]
    assert sorted(writes.groups[1]) == ["b", "c", "d", "e", "f"], "everyone who waited went in one write"
    assert len(writes.groups) == 2


def test_a_group_is_never_larger_than_its_limit_and_every_item_is_written_once():
    writes = Writes(hold_first=True)
    commit = GroupCommit(writes, max_group=4)
    items = [f"i{n}" for n in range(10)]
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(commit.submit, "first")
        assert writes.started.wait(10)
        later = [pool.submit(commit.submit, item) for item in items]
        queued(commit, len(items))
        writes.release.set()
        assert first.result(10) == "written first"
        assert sorted(f.result(10) for f in later) == sorted(f"written {item}" for item in items)
    assert [len(g) for g in writes.groups[1:]] == [4, 4, 2]
    written = [item for group in writes.groups for item in group]
    assert sorted(written) == sorted(["first", *items])


def test_a_failed_write_is_raised_to_every_caller_of_its_group_and_the_next_group_still_writes():
    writes = Writes(hold_first=True, fail_on="c")
    commit = GroupCommit(writes)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(commit.submit, "first")
        assert writes.started.wait(10)
        failing = [pool.submit(commit.submit, item) for item in ("b", "c")]
        queued(commit, 2)
        writes.release.set()
        assert first.result(10) == "written first"
        for future in failing:
            with pytest.raises(ConnectionError):
                future.result(10)
    assert commit.submit("d") == "written d"


def test_a_write_that_answers_for_fewer_items_than_it_took_fails_its_callers():
    commit = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="a group of 1 was written with 0 results"):
        commit.submit("a")
