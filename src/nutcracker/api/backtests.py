"""Backtests run for the API's callers: each in a worker process, a bounded number at once, per user.

The API process never runs a backtest itself (it shares its event loop with the engine): the job's
inputs are written to a directory of their own and a process of a small pool (``spawn``: nothing of
the engine's state is inherited) loads them, runs the backtest, reports its progress through a file
beside them and writes the usual outputs there (``summary.json``, ``report.html``, the CSVs). A job
is its owner's only; a user has at most ``per_user`` jobs waiting or running and keeps the last
``keep`` finished ones (older ones are deleted with their files).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CANDLES_FILE", "CONFIG_FILE", "BacktestJob", "BacktestJobs", "JobLimitError", "run_job"]

CONFIG_FILE = "config.toml"
CANDLES_FILE = "candles.csv"  # ``.gz`` appended when the upload is gzip
PROGRESS_FILE = "progress"
DONE, FAILED, QUEUED, RUNNING = "done", "failed", "queued", "running"

logger = logging.getLogger("nutcracker.api")


class JobLimitError(Exception):
    """The caller (or the server) has as many backtests waiting or running as allowed."""


@dataclass
class BacktestJob:
    """One backtest: whose, from what, where its files are, and how far it got."""

    id: str
    user: str
    source: str  # what the user gave, in words: "example grid-btc-usdt, synthetic market"
    created_ms: int
    directory: Path
    state: str = QUEUED
    error: str = ""
    summary: dict[str, Any] | None = None
    finished_ms: int | None = None
    future: Future[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)

    def progress(self) -> float:
        """The share of candles done, 0..1 (read from the worker's progress file)."""
        if self.state == DONE:
            return 1.0
        try:
            done, total = (self.directory / PROGRESS_FILE).read_text().split()
            return max(0.0, min(1.0, int(done) / max(1, int(total))))
        except (OSError, ValueError):  # not written yet, or replaced while read
            return 0.0


class BacktestJobs:
    """The jobs of one API process (see the module docstring)."""

    def __init__(self, *, workers: int = 2, per_user: int = 2, keep: int = 5, waiting: int = 8) -> None:
        self.workers = workers
        self.per_user = per_user
        self.keep = keep
        self.waiting = waiting  # jobs waiting or running, all users together
        self._jobs: dict[str, BacktestJob] = {}
        self._lock = threading.Lock()  # completion callbacks run on the pool's thread
        self._pool: ProcessPoolExecutor | None = None
        self._root: Path | None = None

    def new_directory(self, user: str) -> tuple[str, Path]:
        """Reserve a job id and an empty directory for its inputs; ``JobLimitError`` over a limit."""
        with self._lock:
            active = [j for j in self._jobs.values() if not j.finished]
            if sum(j.user == user for j in active) >= self.per_user:
                raise JobLimitError(
                    f"you have {self.per_user} backtests waiting or running: wait for one to finish"
                )
            if len(active) >= self.waiting:
                raise JobLimitError(f"{len(active)} backtests are waiting or running here: try again shortly")
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="nutcracker-backtests-"))
                atexit.register(self.close)
            job_id = secrets.token_hex(8)
            directory = self._root / job_id
            directory.mkdir(mode=0o700)
            return job_id, directory

    def submit(
        self, job_id: str, directory: Path, user: str, source: str, *, synthetic: int, seed: int
    ) -> BacktestJob:
        """Start the job whose inputs are in ``directory`` (from ``new_directory``)."""
        job = BacktestJob(job_id, user, source, int(time.time() * 1000), directory)
        with self._lock:
            self._jobs[job_id] = job
            self._forget_old(user)
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
            job.future = self._pool.submit(run_job, str(directory), synthetic, seed)
        job.future.add_done_callback(lambda f: self._finish(job, f))
        return job

    def get(self, user: str, job_id: str) -> BacktestJob | None:
        """The user's job ``job_id`` (None for another user's: it does not exist for them)."""
        job = self._jobs.get(job_id)
        if job is None or job.user != user:
            return None
        if job.state == QUEUED and job.future is not None and job.future.running():
            job.state = RUNNING
        return job

    def of(self, user: str) -> list[BacktestJob]:
        """The user's jobs, newest first."""
        mine = [j for j in self._jobs.values() if j.user == user]
        return [self.get(user, j.id) or j for j in sorted(mine, key=lambda j: j.created_ms, reverse=True)]

    def close(self) -> None:
        """Stop the workers (running jobs are abandoned) and delete every job's files."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _finish(self, job: BacktestJob, future: Future[dict[str, Any]]) -> None:
        with self._lock:
            job.finished_ms = int(time.time() * 1000)
            if future.cancelled():
                job.state, job.error = FAILED, "cancelled: the server is stopping"
                return
            error = future.exception()
            if error is not None:
                logger.error("backtest_failed job=%s error=%s", job.id, type(error).__name__, exc_info=error)
                job.state, job.error = FAILED, "internal error: the server's log has the details"
                return
            outcome = future.result()
            if "error" in outcome:
                job.state, job.error = FAILED, str(outcome["error"])
            else:
                job.state, job.summary = DONE, outcome["summary"]

    def _forget_old(self, user: str) -> None:
        finished = sorted(
            (j for j in self._jobs.values() if j.user == user and j.finished), key=lambda j: j.created_ms
        )
        for old in finished[: max(0, len(finished) - self.keep + 1)]:
            del self._jobs[old.id]
            shutil.rmtree(old.directory, ignore_errors=True)


def run_job(directory: str, synthetic: int, seed: int) -> dict[str, Any]:
    """Run the backtest whose inputs are in ``directory`` (in a worker process); write its outputs there.

    Returns ``{"summary": ...}``, or ``{"error": one line}`` for bad inputs (a config or candle file
    the user can fix); anything else raises and is logged by the API.
    """
    from nutcracker.app.kernel import backtest
    from nutcracker.backtest.data import load_data
    from nutcracker.backtest.output import write_outputs
    from nutcracker.config import load_config
    from nutcracker.errors import ConfigError, DataError

    where = Path(directory)
    candles = [p for p in where.iterdir() if p.name.startswith(CANDLES_FILE)]
    progress_file = where / PROGRESS_FILE
    try:
        config = load_config(where / CONFIG_FILE)
        files = {config.symbols[0].market.symbol: candles[0]} if candles else {}
        data = load_data(config, files, synthetic=synthetic, seed=seed)
    except (ConfigError, DataError) as e:
        return {"error": _one_line(str(e).replace(str(where) + os.sep, ""))}
    total = sum(len(c.ts_ms) for c in data.values())

    def progress(done: int) -> None:
        scratch = progress_file.with_suffix(".tmp")
        scratch.write_text(f"{done} {total}")
        os.replace(scratch, progress_file)

    result = backtest(config, data, progress=progress)
    summary = write_outputs(result, config, where, title="Nutcracker backtest (console)")
    return {"summary": summary}


def _one_line(text: str) -> str:
    return "; ".join(line.strip(" -") for line in text.splitlines() if line.strip())
