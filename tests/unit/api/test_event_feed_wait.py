"""``EventFeed.wait``: a future per waiter, one heartbeat timer for them all (on uvloop, as serve)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from nutcracker.api.plane import EventFeed
from nutcracker.api.server import run
from nutcracker.store.sqlite import SqliteJournal


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[EventFeed]:
    journal = SqliteJournal(tmp_path / "journal.db")
    try:
        yield EventFeed(journal)
    finally:
        journal.close()


async def _woken_after(feed: EventFeed, timeouts: list[float]) -> list[float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    futures = [feed.wait(t) for t in timeouts]
    woken: list[float] = []
    for f in futures:
        await f
        woken.append(loop.time() - start)
    return woken


def test_every_waiter_wakes_by_the_earliest_timeout_never_after_its_own(feed: EventFeed) -> None:
    woken = run(_woken_after(feed, [0.5, 0.05, 0.2]))
    assert all(w < 0.05 + 0.04 for w in woken), woken  # the earliest timeout woke all three
    assert all(w >= 0.05 - 0.005 for w in woken), woken  # but not before it


def test_a_later_waiter_gets_its_own_timeout_after_a_beat(feed: EventFeed) -> None:
    async def twice() -> tuple[list[float], list[float]]:
        return await _woken_after(feed, [0.03]), await _woken_after(feed, [0.06])

    first, second = run(twice())
    assert 0.025 <= first[0] < 0.07
    assert 0.055 <= second[0] < 0.1  # a new timer for the new waiter: the first one fired and is gone


def test_a_waiter_that_hangs_up_cancels_only_its_own_wait(feed: EventFeed) -> None:
    async def scenario() -> tuple[bool, list[bool]]:
        async def waiter() -> None:
            await feed.wait(0.05)

        leaving = asyncio.ensure_future(waiter())
        staying = [asyncio.ensure_future(waiter()) for _ in range(3)]
        await asyncio.sleep(0)  # all four are waiting
        leaving.cancel()
        await asyncio.gather(*staying)  # woken by the beat, not cancelled
        return leaving.cancelled(), [s.cancelled() for s in staying]

    left, stayed = run(scenario())
    assert left
    assert stayed == [False, False, False]
