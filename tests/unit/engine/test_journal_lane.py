"""The journal lane: group commit of the workers' writes, durable before anyone goes on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from engine_world import BTC, ETH, Recording, WriteAheadCheck, make_world, params_for

from nutcracker.core.records import IntentRecord, PulseRecord
from nutcracker.engine.journaling import JournalLane
from nutcracker.engine.ports import GroupCommitJournal, JournalWrite
from nutcracker.engine.runtime import Engine, EngineSettings, WallClock
from nutcracker.store.memory import InMemoryJournal
from nutcracker.store.sqlite import SqliteJournal


class Batching(InMemoryJournal):
    """An in-memory journal with group commit: stages in memory, applies at commit; logs batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[JournalWrite]] = []
        self.staged: list[JournalWrite] | None = None
        self.commit_threads: list[str] = []
        self.fail_commit = False

    def stage_batch(self, writes: Sequence[JournalWrite]) -> list[Exception | None]:
        assert self.staged is None, "a batch was staged before the last one was committed"
        self.batches.append(list(writes))
        self.staged = list(writes)
        return [
            ValueError(f"refused {w.symbol}")
            if isinstance(w, PulseRecord) and "refuse" in w.reasons
            else None
            for w in writes
        ]

    def commit_staged(self) -> None:
        staged, self.staged = self.staged, None
        assert staged is not None
        self.commit_threads.append(threading.current_thread().name)
        if self.fail_commit:
            raise OSError("disk full")
        for write in staged:
            if isinstance(write, PulseRecord):
                if "refuse" not in write.reasons:
                    self.commit_pulse(write)
            else:
                self.update_intents(*write)


def _fits_the_port(journal: Batching | SqliteJournal) -> GroupCommitJournal:
    return journal  # mypy checks that both fit the group-commit port


def record(symbol: str, cid: str, *, refuse: bool = False) -> PulseRecord:
    intent = IntentRecord(symbol, cid, "place", "buy", 100, 1, "pending", "", 1)
    return PulseRecord(symbol, 1, "{}", (), (), (), (intent,), ("refuse",) if refuse else ())


def test_writes_of_one_loop_turn_share_one_batch_committed_off_the_loop() -> None:
    journal = Batching()
    lane = JournalLane(journal)
    seen: list[str] = []

    async def worker(symbol: str) -> None:
        await lane.commit_pulse(record(symbol, f"{symbol}-1"))
        assert journal.open_intents(symbol), "resumed before its commit landed"
        seen.append(symbol)
        await lane.update_intents(symbol, [(f"{symbol}-1", "acked", "")], 2)

    async def main() -> None:
        await asyncio.gather(*(worker(s) for s in ("A/X", "B/X", "C/X")))

    asyncio.run(main())
    lane.close()
    assert [len(b) for b in journal.batches] == [3, 3]
    assert all(isinstance(w, PulseRecord) for w in journal.batches[0])
    assert sorted(seen) == ["A/X", "B/X", "C/X"]
    assert all(name.startswith("journal-commit") for name in journal.commit_threads)
    assert (lane.batches, lane.durable_batches, lane.writes) == (2, 1, 6)
    assert all(journal.open_intents(s) == [] for s in ("A/X", "B/X", "C/X"))


def test_a_refused_write_fails_its_worker_only() -> None:
    journal = Batching()
    lane = JournalLane(journal)

    async def main() -> tuple[BaseException | None, BaseException | None]:
        return await asyncio.gather(
            lane.commit_pulse(record("A/X", "a")),
            lane.commit_pulse(record("B/X", "b", refuse=True)),
            return_exceptions=True,
        )

    first, second = asyncio.run(main())
    lane.close()
    assert first is None
    assert isinstance(second, ValueError)
    assert len(journal.batches) == 1
    assert [i.client_order_id for i in journal.open_intents("A/X")] == ["a"]
    assert journal.open_intents("B/X") == []


class AnswersAtCommit(Batching):
    """Group commit as Redis does it: staging only queues, the commit runs the writes and answers."""

    def stage_batch(self, writes: Sequence[JournalWrite]) -> list[Exception | None]:
        super().stage_batch(writes)
        return [None] * len(writes)

    def commit_staged(self) -> list[Exception | None]:  # type: ignore[override]
        staged = self.staged
        assert staged is not None
        super().commit_staged()
        return [
            ValueError(f"refused {w.symbol}")
            if isinstance(w, PulseRecord) and "refuse" in w.reasons
            else None
            for w in staged
        ]


def test_a_write_refused_when_the_batch_is_committed_fails_its_worker_only() -> None:
    journal = AnswersAtCommit()
    lane = JournalLane(journal)

    async def main() -> tuple[BaseException | None, BaseException | None]:
        return await asyncio.gather(
            lane.commit_pulse(record("A/X", "a")),
            lane.commit_pulse(record("B/X", "b", refuse=True)),
            return_exceptions=True,
        )

    first, second = asyncio.run(main())
    lane.close()
    assert first is None
    assert isinstance(second, ValueError)  # the commit's answer, not the stage's placeholder
    assert journal.commit_threads == ["journal-commit_0"]  # sent off the event loop
    assert [i.client_order_id for i in journal.open_intents("A/X")] == ["a"]
    assert journal.open_intents("B/X") == []


def test_a_failed_commit_fails_every_worker_of_the_batch_and_the_lane_goes_on() -> None:
    journal = Batching()
    journal.fail_commit = True
    lane = JournalLane(journal)

    async def main() -> tuple[BaseException | None, BaseException | None]:
        return await asyncio.gather(
            lane.commit_pulse(record("A/X", "a")),
            lane.commit_pulse(record("B/X", "b")),
            return_exceptions=True,
        )

    assert [type(r) for r in asyncio.run(main())] == [OSError, OSError]
    journal.fail_commit = False
    asyncio.run(lane.commit_pulse(record("A/X", "a2")))
    lane.close()
    assert [i.client_order_id for i in journal.open_intents("A/X")] == ["a2"]


def test_a_write_still_queued_when_its_worker_is_cancelled_is_never_written() -> None:
    journal = Batching()
    lane = JournalLane(journal)

    async def main() -> None:
        task = asyncio.create_task(lane.commit_pulse(record("A/X", "a")))
        await asyncio.sleep(0)  # queued, the flush not run yet
        task.cancel()
        await lane.commit_pulse(record("B/X", "b"))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    lane.close()
    assert journal.batches == [[record("B/X", "b")]]


def test_a_journal_without_group_commit_gets_its_calls_one_by_one() -> None:
    journal = InMemoryJournal()
    lane = JournalLane(journal)
    assert not lane.group_commit
    assert not JournalLane(Batching(), group_commit=False).group_commit

    async def main() -> None:
        await asyncio.gather(lane.commit_pulse(record("A/X", "a")), lane.commit_pulse(record("B/X", "b")))
        await lane.update_intents("A/X", [("a", "acked", "")], 2)

    asyncio.run(main())
    assert lane.batches == 0
    assert journal.open_intents("A/X") == []
    assert len(journal.open_intents("B/X")) == 1


def test_the_engine_commits_concurrent_pulses_together_and_on_disk_before_sending(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with SqliteJournal(path) as journal, SqliteJournal(path) as reader:
        world = make_world((BTC, ETH), journal=journal)
        recording = Recording(world.sim)
        check = WriteAheadCheck(reader.intents)  # another connection: sees committed rows only
        recording.before_send = check
        settings = EngineSettings(monitor_interval_s=None, cancel_on_shutdown=False)
        engine = Engine(
            [params_for(BTC), params_for(ETH)], recording, journal, WallClock(), settings=settings
        )
        assert engine.journal_lane.group_commit

        async def main() -> None:
            for _ in range(40):
                world.advance()
                await engine.pulse_all(concurrently=True)
            await engine.shutdown()

        asyncio.run(main())
        lane = engine.journal_lane
        assert check.checked["place"] >= 10  # both symbols' ladders
        assert {i.symbol for i in reader.intents(BTC) + reader.intents(ETH)} == {BTC, ETH}
        assert lane.durable_batches < lane.writes / 2  # the two symbols' commits went together
        assert {r.status for r in reader.intents(BTC) + reader.intents(ETH)} <= {"acked", "done", "rejected"}
