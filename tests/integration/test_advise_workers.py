"""``nutcracker advise worker``: worker processes sharing one Optuna study (issue 16 items 7 and 8).

Two real worker processes share a study on a real ``redis-server``: the trials add up to the trial
set, each ran exactly once (by the worker whose pid it names), and both report the suggestion one
worker alone finds for the same seed and trial set, byte for byte. A worker killed with SIGKILL in
the middle of a trial loses nothing: the survivor fails the trial once its heartbeat stopped and
runs its parameters again, once. One worker, the same inputs and seed: the same suggestions JSON,
byte for byte, whichever storage holds the study.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nutcracker.cli import EXIT_CONFIG, app

ROOT = Path(__file__).resolve().parents[2]
ADVISOR = (
    '\n[advisor]\nfolds = 2\n\n[advisor.tune]\n"profit.min_net_bps" = ["5", "30"]\n"grid.levels" = [2, 6]\n'
)
DATA = "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
TRIALS = "60"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this tree's code, from any working directory
RAN = re.compile(r"this worker ran (\d+) trials of (\d+)")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, str]:
    """The grid example with an [advisor] table, and three days of real candles (a temp slice)."""
    tmp = tmp_path_factory.mktemp("workers")
    config = tmp / "grid.toml"
    config.write_text((ROOT / "examples" / "grid-btc-usdt.toml").read_text() + ADVISOR)
    small = tmp / "btc.csv"
    with gzip.open(data_dir / DATA, "rt") as f:
        small.write_text("".join(line for _, line in zip(range(4_001), f, strict=False)))
    return config, f"BTC/USDT={small}"


def _worker(inputs: tuple[Path, str], out: Path, *extra: str) -> list[str]:
    config, data = inputs
    return [
        sys.executable,
        "-m",
        "nutcracker.cli",
        "advise",
        "worker",
        "--config",
        str(config),
        "--data",
        data,
        "--trials",
        TRIALS,
        "--seed",
        "3",
        "--out",
        str(out),
        *extra,
    ]


def _single(inputs: tuple[Path, str], out: Path, *extra: str) -> bytes:
    out.mkdir(parents=True)
    done = subprocess.run(
        _worker(inputs, out, "--study", "alone", *extra),
        capture_output=True,
        text=True,
        cwd=out,
        env=ENV,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    match = RAN.search(done.stdout)
    assert match is not None, done.stdout
    assert match.groups() == (TRIALS, TRIALS), done.stdout
    return (out / "suggestions.json").read_bytes()


@pytest.mark.slow
def test_two_workers_on_redis_share_the_trials_and_find_what_one_worker_finds(
    inputs: tuple[Path, str], redis_url: str, tmp_path: Path
) -> None:
    import optuna
    from optuna.trial import TrialState

    from nutcracker.advisor.heartbeat import Heartbeat
    from nutcracker.advisor.shared import redis_storage

    outs = [tmp_path / "w1", tmp_path / "w2"]
    procs = [
        subprocess.Popen(
            _worker(inputs, out, "--study", "shared", "--storage", redis_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for out in outs
    ]
    ran: dict[int, int] = {}
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr
        match = RAN.search(stdout)
        assert match is not None, stdout
        assert match.group(2) == TRIALS
        assert f"{TRIALS} of {TRIALS} finished" in stdout
        assert "lost their worker" not in stdout  # both live: no trial failed, none retried
        ran[p.pid] = int(match.group(1))
    # the trials add up: every trial of the set ran once, by the worker it names
    assert sum(ran.values()) == int(TRIALS)
    assert all(n > 0 for n in ran.values()), ran  # both worked on the study
    storage = redis_storage(redis_url, Heartbeat())
    trials = optuna.load_study(study_name="shared:BTC/USDT", storage=storage).trials
    assert sorted(t.number for t in trials) == list(range(int(TRIALS)))  # none lost, none added
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    by_pid = Counter(int(str(t.user_attrs["worker"]).rsplit(":", 1)[1]) for t in trials)
    assert dict(by_pid) == ran  # what each worker says it ran is what the study holds
    # both report the same advice, and it is what one worker alone finds (a local study file)
    shared = [(out / "suggestions.json").read_bytes() for out in outs]
    assert shared[0] == shared[1]
    assert _single(inputs, tmp_path / "one") == shared[0]
    assert b'"trials_per_study": 60' in shared[0]


def _running_trial_of(study_name: str, storage: object, pid: int, *, after: int) -> object | None:
    """Freeze worker ``pid`` and return the trial it runs once it finished ``after`` trials, or None
    (then it runs on)."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)  # type: ignore[arg-type]
    except KeyError:  # not created yet
        return None
    os.kill(pid, signal.SIGSTOP)  # it cannot finish a trial while we look
    mine = [t for t in study.get_trials(deepcopy=True) if str(t.user_attrs.get("worker")).endswith(f":{pid}")]
    running = [t for t in mine if t.state == TrialState.RUNNING]
    if running and len(mine) > after:
        return running[0]
    os.kill(pid, signal.SIGCONT)  # too early, or between two trials: look again
    return None


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_no_trial_and_the_survivor_runs_its_parameters_once(
    inputs: tuple[Path, str], redis_url: str, tmp_path: Path
) -> None:
    import optuna
    from optuna.trial import TrialState

    from nutcracker.advisor.heartbeat import Heartbeat
    from nutcracker.advisor.shared import redis_storage

    beat = ("--heartbeat", "1", "--grace", "3", "--wait", "60")  # the survivor waits 3 s for the dead one
    doomed, survivor = (
        subprocess.Popen(
            _worker(inputs, tmp_path / name, "--study", "kill", "--storage", redis_url, *beat),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for name in ("doomed", "survivor")
    )
    storage = redis_storage(redis_url, Heartbeat(1, 3))
    victim = None
    deadline = time.monotonic() + 300
    while victim is None:
        assert time.monotonic() < deadline, "the doomed worker never ran a trial"
        assert doomed.poll() is None, doomed.communicate()
        time.sleep(0.05)
        victim = _running_trial_of("kill:BTC/USDT", storage, doomed.pid, after=3)
    doomed.kill()  # SIGKILL, mid-trial (it is frozen inside it)
    doomed.communicate(timeout=60)

    stdout, stderr = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, stderr
    assert f"{TRIALS} of {TRIALS} finished" in stdout, stdout
    assert "1 trial(s) lost their worker" in stdout, stdout
    match = RAN.search(stdout)
    assert match is not None, stdout
    trials = optuna.load_study(study_name="kill:BTC/USDT", storage=storage).trials
    by_state = Counter(t.state for t in trials)
    # the dead worker's trial was failed, and its parameters ran once more, by the survivor
    assert by_state[TrialState.FAIL] == 1, by_state
    assert by_state[TrialState.RUNNING] == by_state[TrialState.WAITING] == 0, by_state
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    assert failed.number == victim.number  # type: ignore[attr-defined]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retries) == 1
    assert retries[0].params == failed.params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].user_attrs["worker"].endswith(f":{survivor.pid}")
    # nothing lost, nothing twice: the finished trials are the trial set, each parameter set once
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == int(TRIALS)
    enqueued = {tuple(sorted(t.params.items())) for t in trials if t.number < int(TRIALS)}
    assert sorted(tuple(sorted(t.params.items())) for t in done) == sorted(enqueued)
    by_pid = Counter(int(str(t.user_attrs["worker"]).rsplit(":", 1)[1]) for t in done)
    assert set(by_pid) == {doomed.pid, survivor.pid}  # the doomed worker finished 3 before it died
    assert by_pid[survivor.pid] == int(match.group(1))  # what the survivor says it ran, the retry with it
    # and the advice is the one a single worker finds
    assert _single(inputs, tmp_path / "one") == (tmp_path / "survivor" / "suggestions.json").read_bytes()


@pytest.mark.slow
def test_one_worker_gives_the_same_suggestions_byte_for_byte_on_any_storage(
    inputs: tuple[Path, str], tmp_path: Path
) -> None:
    first = _single(inputs, tmp_path / "a")  # the default: a study file in the working directory
    again = _single(inputs, tmp_path / "b", "--storage", f"sqlite:///{tmp_path / 'study.db'}")
    assert first == again
    assert b'"seed": 3' in first
    assert (tmp_path / "a" / "advisor-study.log").is_file()


def test_a_worker_with_other_inputs_cannot_join_a_study(inputs: tuple[Path, str], tmp_path: Path) -> None:
    config, data = inputs
    base = ["advise", "worker", "--config", str(config), "--data", data, "--study", "s", "--trials", "3"]
    storage = ["--storage", str(tmp_path / "study.log")]
    first = CliRunner().invoke(app, [*base, *storage, "--seed", "1"])
    assert first.exit_code == 0, first.output
    other = CliRunner().invoke(app, [*base, *storage, "--seed", "2"])
    assert other.exit_code == EXIT_CONFIG, other.output
    assert "was made from other inputs" in other.output
    assert "Traceback" not in other.output
