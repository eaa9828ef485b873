"""Trials of a dead worker go back to the queue: Optuna's heartbeat, on every storage the study may use.

A worker records a heartbeat for the trial it runs every ``interval_s``; any worker (a survivor, or
one started later) fails a running trial whose heartbeat stopped for ``grace_s``
(``optuna.storages.fail_stale_trials``) and Optuna's ``RetryHeartbeatStaleTrialCallback`` enqueues
its parameters once more, as a new waiting trial. The RDB storage has this built in (with the
database's clock). Optuna 5.1's journal storage (a file, Redis) has none: ``HeartbeatJournalStorage``
adds it. There a heartbeat is a fresh value in the trial's system attributes, and a checker times
how long a value stays unchanged on its own monotonic clock, so the machines' clocks need not
agree; a checker that has just started gives every running trial a whole grace period.

A worker that was only slow, not dead, loses its trial: its result is refused (the trial is
finished), and the retry's is the one the study keeps, so no parameters complete twice.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from nutcracker.advisor.shared import storage_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from optuna.storages.journal import BaseJournalBackend

HEARTBEAT_KEY: Final = "nutcracker:heartbeat"
MAX_RETRIES: Final = 3  # then the trial is given up: its parameters may be what kills the workers


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """How often a running trial says it is alive, and how long a silent one is waited for."""

    interval_s: int = 10
    grace_s: int = 60

    def __post_init__(self) -> None:
        if not 1 <= self.interval_s < self.grace_s:
            raise ValueError(f"need 1 <= interval_s < grace_s, got {self.interval_s} and {self.grace_s}")


def retry_callback() -> Callable[[optuna.Study, FrozenTrial], None]:
    """Return Optuna's callback that enqueues a stale trial's parameters again (experimental: muted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the heartbeat its RDB storage has (see the module docstring)."""

    def __init__(self, backend: BaseJournalBackend, heartbeat: Heartbeat) -> None:
        super().__init__(backend)
        self._heartbeat = heartbeat
        self._stale_callback = retry_callback()
        self._seen: dict[
            int, tuple[object, float]
        ] = {}  # trial id -> (its last beat, monotonic s first seen)

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_KEY, time.time_ns())  # only its change counts

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.monotonic()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        seen: dict[int, tuple[object, float]] = {}
        stale = []
        for t in running:
            beat = t.system_attrs.get(HEARTBEAT_KEY)
            before = self._seen.get(t._trial_id)
            seen[t._trial_id] = before if before is not None and before[0] == beat else (beat, now)
            if now - seen[t._trial_id][1] > self._heartbeat.grace_s:
                stale.append(t._trial_id)
        self._seen = seen  # finished trials are forgotten
        return stale

    def get_heartbeat_interval(self) -> int:
        return self._heartbeat.interval_s

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None]:
        return self._stale_callback


def fail_stale(study: optuna.Study) -> None:
    """Fail the study's trials whose worker stopped beating, and enqueue their parameters again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@contextmanager
def beating(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record ``trial_id``'s heartbeat in a thread while the block runs (nothing if the storage has none)."""
    if not isinstance(storage, BaseHeartbeat) or storage.get_heartbeat_interval() is None:
        yield
        return
    interval = storage.get_heartbeat_interval()
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                storage.record_heartbeat(trial_id)
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # failed as stale by another worker: its retry runs the parameters
            except storage_errors():
                pass  # the storage is unreachable: the worker's own next call says so in one line
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
