"""``nutcracker advise worker``: worker processes sharing one Optuna study (issue 16 items 7 and 8).

Two real worker processes share a study on a real ``redis-server``: the trials add up to the trial
set, each ran exactly once (by the worker whose pid it names), and both report the suggestion one
worker alone finds for the same seed and trial set, byte for byte. One worker, the same inputs and
seed: the same suggestions JSON, byte for byte, whichever storage holds the study.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
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
        ran[p.pid] = int(match.group(1))
    # the trials add up: every trial of the set ran once, by the worker it names
    assert sum(ran.values()) == int(TRIALS)
    assert all(n > 0 for n in ran.values()), ran  # both worked on the study
    storage = redis_storage(redis_url)
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
