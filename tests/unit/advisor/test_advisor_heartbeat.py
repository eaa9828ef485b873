"""The journal storage's heartbeat: a silent running trial is failed after the grace, and run again once."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from nutcracker.advisor.heartbeat import Heartbeat, HeartbeatJournalStorage, beating, fail_stale


def _claim(study: optuna.Study, storage: HeartbeatJournalStorage, x: int) -> int:
    """Enqueue and claim a trial that draws ``x``, as a worker does; return its id."""
    study.enqueue_trial({"x": x})
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]
    assert storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING)
    assert optuna.trial.Trial(study, waiting._trial_id).suggest_int("x", 0, 9) == x
    return waiting._trial_id


def test_a_silent_trial_is_failed_after_the_grace_and_enqueued_again_while_a_beating_one_runs_on(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "study.log")
    beat = Heartbeat(interval_s=1, grace_s=2)
    worker = HeartbeatJournalStorage(JournalFileBackend(path), beat)
    checker = HeartbeatJournalStorage(JournalFileBackend(path), beat)  # another worker, same file
    study = optuna.create_study(storage=worker, study_name="s", direction="maximize")
    silent = _claim(study, worker, 3)  # its worker died: nothing beats for it
    live = _claim(study, worker, 4)
    watched = optuna.load_study(study_name="s", storage=checker)
    with beating(worker, live):
        fail_stale(watched)  # the checker sees both for the first time: each gets a whole grace
        assert {t.state for t in watched.trials} == {TrialState.RUNNING}
        time.sleep(2.5)
        fail_stale(watched)
        fail_stale(watched)  # a second look fails nothing more, enqueues nothing more
    trials = {t._trial_id: t for t in watched.trials}
    assert (trials[silent].state, trials[live].state) == (TrialState.FAIL, TrialState.RUNNING)
    (retry,) = [t for t in watched.trials if t.system_attrs.get("failed_trial") == trials[silent].number]
    assert (retry.state, retry.params) == (TrialState.WAITING, {"x": 3})
    # the dead worker's late result (it was only slow) is refused: the retry's is the one kept
    with pytest.raises((ValueError, optuna.exceptions.UpdateFinishedTrialError)):
        study.tell(optuna.trial.Trial(study, silent), 1.0)


def test_the_grace_must_be_longer_than_the_heartbeat() -> None:
    with pytest.raises(ValueError, match="interval_s < grace_s"):
        Heartbeat(interval_s=5, grace_s=5)
