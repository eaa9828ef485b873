"""``JournalLane``: how the workers of one engine reach the journal, with group commit.

Every journal call of a worker goes through the lane: inline in the event loop's thread, or, given
an executor (one thread, for a thread-safe journal such as ``SqliteJournal``), in that thread. A
worker awaits each call before its next one, so its calls stay in order.

Group commit. When the journal can (``ports.GroupCommitJournal``) and the lane was made with
``group_commit=True``, the two writes of a pulse that change intents (the write-ahead
``commit_pulse`` and the outcomes' ``update_intents``) are not sent one by one: each is queued
with a future, which its worker awaits. At the next turn of the event loop the lane hands the
queue to ``stage_batch`` in the loop's thread (the statements: CPU work, no waiting on the disk),
then ``commit_staged`` runs in a thread of the lane's own and waits for the commit's fsync there
while the loop pulses the other symbols (Redis: staging only queues the scripts; the commit
thread sends them in one round trip, waits for the server's fsync, and answers per write).
Every worker that reached its write in the same turn thus shares one transaction and one fsync.
One batch is in flight at a time; the writes queued meanwhile form the next one. A future is
resolved only once ``commit_staged`` returned, i.e. once the write is on disk: a worker still
sends nothing before its intents are durable, and a write the journal refused raises in its own
worker only (``ValueError``, as the single call would).
If the commit itself fails, every worker of the batch gets the error and no write of the batch
was kept.

A write still queued when its worker is cancelled is dropped (never written); one already staged
is committed all the same.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from nutcracker.core.records import PulseRecord
from nutcracker.engine.ports import GroupCommitJournal, Journal, JournalWrite

__all__ = ["JournalLane"]

P = ParamSpec("P")
T = TypeVar("T")

_Queued = tuple[JournalWrite, "asyncio.Future[None]"]


class JournalLane:
    """The journal as the workers of one engine reach it: inline or in one thread, with group commit."""

    def __init__(
        self, journal: Journal, executor: Executor | None = None, *, group_commit: bool = True
    ) -> None:
        self.journal = journal
        self._executor = executor
        self._stage: Callable[[Sequence[JournalWrite]], list[Exception | None]] | None = None
        self._commit: Callable[[], list[Exception | None] | None] | None = None
        if group_commit and isinstance(journal, GroupCommitJournal):  # the journal can group writes
            self._stage, self._commit = journal.stage_batch, journal.commit_staged
        self._committer: ThreadPoolExecutor | None = None  # made at the first batch
        self._queue: list[_Queued] = []
        self._busy = False  # a flush is scheduled, or a batch is being committed
        self.batches = 0  # batches committed (or tried)
        self.durable_batches = 0  # of those, the ones holding a pulse: one fsync each
        self.writes = 0  # writes in those batches
        self.stage_ns = 0  # time spent staging them, in the loop's thread
        self.commit_ns = 0  # time spent committing them (the fsync), in the commit thread

    @property
    def group_commit(self) -> bool:
        """Return whether writes are grouped (the journal can, and grouping is on)."""
        return self._stage is not None

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the journal inline, or in the journal's thread when there is one."""
        if self._executor is None:
            return fn(*args, **kwargs)
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def commit_pulse(self, record: PulseRecord) -> None:
        """``Journal.commit_pulse``, grouped with the other workers' writes of this loop turn."""
        if self._stage is None:
            await self.call(self.journal.commit_pulse, record)
        else:
            await self._write(record)

    async def update_intents(self, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int) -> None:
        """``Journal.update_intents``, grouped with the other workers' writes of this loop turn."""
        if self._stage is None:
            await self.call(self.journal.update_intents, symbol, updates, ts_ms)
        elif updates:
            await self._write((symbol, tuple(updates), ts_ms))

    def close(self) -> None:
        """Stop the commit thread (after the batch in flight, if any); the lane stays usable."""
        committer, self._committer = self._committer, None
        if committer is not None:
            committer.shutdown(wait=True)

    # -- group commit ----------------------------------------------------------------------------

    async def _write(self, write: JournalWrite) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((write, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._flush)
        await future

    def _flush(self) -> None:
        """Stage every queued write (of a worker still waiting) as one batch and start its commit."""
        batch = [(write, future) for write, future in self._queue if not future.cancelled()]
        self._queue = []
        if not batch:
            self._busy = False
            return
        writes = [write for write, _ in batch]
        stage = self._stage
        assert stage is not None
        self.batches += 1
        self.writes += len(writes)
        self.durable_batches += any(isinstance(write, PulseRecord) for write in writes)
        started = time.perf_counter_ns()
        try:
            results = stage(writes)
        except BaseException as e:  # nothing was staged
            self.stage_ns += time.perf_counter_ns() - started
            _settle(batch, None, e)
            self._next()
            return
        self.stage_ns += time.perf_counter_ns() - started
        if self._committer is None:
            self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-commit")
        try:
            running = asyncio.get_running_loop().run_in_executor(self._committer, self._commit_timed)
        except BaseException:  # no thread to wait in: commit here rather than leave the journal locked
            self._committed(batch, results)
            return
        running.add_done_callback(functools.partial(self._landed, batch, results))

    def _commit_timed(self) -> list[Exception | None] | None:
        commit = self._commit
        assert commit is not None
        started = time.perf_counter_ns()
        try:
            return commit()
        finally:
            self.commit_ns += time.perf_counter_ns() - started

    def _committed(self, batch: list[_Queued], results: list[Exception | None]) -> None:
        try:
            answers = self._commit_timed()
        except BaseException as e:
            _settle(batch, None, e)
        else:
            _settle(batch, results if answers is None else answers, None)
        self._next()

    def _landed(
        self,
        batch: list[_Queued],
        results: list[Exception | None],
        running: asyncio.Future[list[Exception | None] | None],
    ) -> None:
        if running.cancelled():
            _settle(batch, None, RuntimeError("the journal's commit thread dropped the batch"))
        elif (error := running.exception()) is not None:
            _settle(batch, None, error)
        else:
            answers = running.result()  # a journal that answers only once committed (Redis)
            _settle(batch, results if answers is None else answers, None)
        self._next()

    def _next(self) -> None:
        if self._queue:  # written while the batch was being committed: the next batch
            self._flush()
        else:
            self._busy = False


def _settle(
    batch: list[_Queued], results: list[Exception | None] | None, error: BaseException | None
) -> None:
    """Resolve the futures of a batch: each with its own answer, or all with the commit's error."""
    if results is not None and len(results) != len(batch):
        error, results = RuntimeError(f"the journal answered {len(results)} of {len(batch)} writes"), None
    for i, (_, future) in enumerate(batch):
        if future.done():  # its worker was cancelled meanwhile
            continue
        failed = error if results is None else results[i]
        if failed is None:
            future.set_result(None)
        else:
            future.set_exception(failed)
