"""The advisor through the real CLI: a replay journal, advise, then accept and reject as the user.

The evidence report ``advise --out`` writes renders in headless Chromium without a console error
(the backtest report's harness, ``test_report_render.open_in_chromium``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.test_report_render import needs_chromium, open_in_chromium
from typer.testing import CliRunner

from nutcracker.cli import EXIT_CONFIG, EXIT_JOURNAL, app
from nutcracker.store.snapshot import open_read_only

ROOT = Path(__file__).resolve().parents[2]
ADVISOR = (
    '\n[advisor]\nfolds = 2\n\n[advisor.tune]\n"profit.min_net_bps" = ["5", "30"]\n"grid.levels" = [2, 6]\n'
)
DATA = "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
runner = CliRunner()


def _tables(journal: Path) -> str:
    """Return a digest of every table the advisor must not touch."""
    conn = sqlite3.connect(journal)
    try:
        rows = [
            conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("params", "audit", "events", "fills", "symbols")
        ]
    finally:
        conn.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("advise")
    config = tmp / "grid.toml"
    config.write_text((ROOT / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml").read_text() + ADVISOR)
    data = f"BTC/USDT={data_dir / DATA}"
    journal = tmp / "journal.db"
    replay = [sys.executable, "-m", "nutcracker.cli", "run", "--config", str(config), "--data", data]
    replay += [
        "--speed",
        "0",
        "--candles",
        "4000",
        "--journal",
        str(journal),
        "--headless",
        "--out",
        str(tmp / "r"),
    ]
    subprocess.run(replay, check=True, capture_output=True, cwd=tmp)
    # as the replay left it (a test's accept stamps the journal with wall-clock time, past the candles)
    shutil.copyfile(journal, journal.with_name("replay-only.db"))
    return config, journal, data


def _run_advise(config: Path, journal: Path, data: str, out: Path) -> subprocess.CompletedProcess[str]:
    """Run ``nutcracker advise`` on the journal (6 trials, seed 2) in its own process, writing ``out``."""
    advise = [sys.executable, "-m", "nutcracker.cli", "advise", "--config", str(config), "--data", data]
    advise += ["--journal", str(journal), "--trials", "6", "--seed", "2", "--out", str(out)]
    result = subprocess.run(advise, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_advise_files_a_suggestion_the_user_accepts_and_cannot_accept_twice(
    setup: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, journal, data = setup
    before = _tables(journal)
    out = tmp_path / "evidence"
    result = _run_advise(config, journal, data, out)
    assert _tables(journal) == before  # an advisor process wrote nothing but its suggestions
    assert (out / "report.html").read_text().count('class="nc-chart nc-folds"') == 1
    assert "Past performance does not predict" in (out / "suggestions.json").read_text()
    listing = runner.invoke(app, ["suggestions", "list", "--journal", str(journal)])
    assert listing.exit_code == 0
    assert "filed 1 suggestion" in result.stdout  # seed 2 on this window: the search wins 2 folds of 2
    sid = listing.stdout.split()[0]
    no = runner.invoke(
        app, ["suggestions", "accept", sid, "--journal", str(journal), "--config", str(config)], input="n\n"
    )
    assert no.exit_code == 1
    assert not config.with_name("grid.toml.bak").exists()
    yes = runner.invoke(
        app,
        [
            "suggestions",
            "accept",
            sid,
            "--journal",
            str(journal),
            "--config",
            str(config),
            "--yes",
            "--actor",
            "user:alice",
        ],
    )
    assert yes.exit_code == 0, yes.output
    assert f"# suggestion {sid}" in config.read_text()
    assert config.with_name("grid.toml.bak").exists()
    conn = open_read_only(journal)
    history = conn.execute("SELECT actor, why FROM params ORDER BY version").fetchall()
    audit = conn.execute("SELECT actor, action, detail FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    conn.close()
    assert history[-1] == ("user:alice", f"accepted suggestion {sid}")
    assert audit[:2] == ("user:alice", "accept_suggestion")
    assert f"suggestion={sid}" in audit[2]
    # the accept stamped the journal with the wall clock, past the replay's candles: advising again
    # on the same journal still takes the market's period (it said "candles do not cover" before)
    _run_advise(config, journal, data, tmp_path / "again")
    again = runner.invoke(
        app, ["suggestions", "accept", sid, "--journal", str(journal), "--config", str(config), "--yes"]
    )
    assert again.exit_code == EXIT_CONFIG
    assert "accepted, not pending" in again.output
    rejected = runner.invoke(app, ["suggestions", "reject", sid, "--journal", str(journal)])
    assert rejected.exit_code == EXIT_CONFIG
    # the engine takes the accepted file at its next start: the same parameters, the user's entry stays last
    replay = [sys.executable, "-m", "nutcracker.cli", "run", "--config", str(config), "--data", data]
    replay += [
        "--speed",
        "0",
        "--candles",
        "10",
        "--journal",
        str(journal),
        "--headless",
        "--out",
        str(tmp_path / "r2"),
    ]
    subprocess.run(replay, check=True, capture_output=True, cwd=tmp_path)
    conn = open_read_only(journal)
    after = conn.execute("SELECT actor, why, params_json FROM params ORDER BY version").fetchall()
    conn.close()
    assert after[-1][:2] == ("user:alice", f"accepted suggestion {sid}")
    assert len(after) == len(history)


@pytest.mark.slow
def test_advise_files_in_the_workers_redis_where_suggestions_list_and_show_read_them(
    setup: tuple[Path, Path, str], redis_url: str, tmp_path: Path
) -> None:
    _, _, data = setup
    config = tmp_path / "grid.toml"  # as the setup wrote it (another test accepts into the setup's)
    config.write_text((ROOT / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml").read_text() + ADVISOR)
    args = ["advise", "--config", str(config), "--data", data, "--store", redis_url]
    result = runner.invoke(app, [*args, "--trials", "6", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert f"filed 1 suggestion(s) in Redis {redis_url}" in result.output  # seed 2: 2 folds of 2 won
    listing = runner.invoke(app, ["suggestions", "list", "--store", redis_url])
    assert listing.exit_code == 0, listing.output
    sid, status, symbol = listing.stdout.split()[:3]
    assert (status, symbol) == ("pending", "BTC/USDT")
    shown = runner.invoke(app, ["suggestions", "show", sid, "--store", redis_url])
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout.split("\n", 1)[1])
    assert (record["id"], record["source"]) == (sid, "config backtest on candle files")
    again = runner.invoke(app, [*args, "--trials", "6", "--seed", "2"])  # the same advice: filed once
    assert again.exit_code == 0, again.output
    assert runner.invoke(app, ["suggestions", "list", "--store", redis_url]).stdout == listing.stdout


@pytest.mark.slow
def test_the_same_inputs_and_seed_give_the_same_suggestions_byte_for_byte(
    setup: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, _, data = setup
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        args = [
            "advise",
            "--config",
            str(config),
            "--data",
            data,
            "--trials",
            "3",
            "--seed",
            "9",
            "--out",
            str(out),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "nothing filed" in result.output or "keep your parameters" in result.output
        outs.append((out / "suggestions.json").read_bytes())
    assert outs[0] == outs[1]
    assert b'"seed": 9' in outs[0]


@needs_chromium
@pytest.mark.slow
def test_the_evidence_report_renders_in_headless_chromium_without_console_errors(
    setup: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, journal, data = setup
    copy = tmp_path / "journal.db"  # advise files into its journal: the other tests keep theirs
    shutil.copyfile(journal.with_name("replay-only.db"), copy)
    out = tmp_path / "evidence"
    _run_advise(config, copy, data, out)

    charts, console = open_in_chromium(out / "report.html", tmp_path)

    assert console == [], "the page logged to the console:\n" + "\n".join(console)
    assert charts.errors is not None, "the capture script did not run (no #nc-test-errors in the DOM)"
    assert json.loads(charts.errors) == []
    assert set(charts.charts) == {"folds-0"}
    chart = charts.charts["folds-0"]
    assert chart["rendered"] == "1", "Plotly.newPlot did not finish"
    assert chart["plot_div"] == 1
    assert chart["main_svg"] >= 2, "no plot SVG"
    assert chart["traces"] == chart["expected_traces"] == 4  # current and suggested, out and in sample
    assert {"symbol-0"} <= charts.ids


def test_the_read_only_snapshot_connection_refuses_to_write_parameters(setup: tuple[Path, Path, str]) -> None:
    _, journal, _ = setup
    conn = open_read_only(journal)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute(
            "INSERT INTO params (symbol, version, params_json, actor, why, ts_ms)"
            " VALUES ('X', 99, '{}', 'advisor', '', 0)"
        )
    conn.close()


def _advise(*extra: str) -> list[str]:
    return ["advise", *extra]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--trials", "0"], EXIT_CONFIG, "--trials 0"),
        (["--seed", "-1"], EXIT_CONFIG, "--seed -1"),
        (["--data", "BTC/USDT=/nonexistent.csv"], EXIT_CONFIG, "/nonexistent.csv"),
        (["--journal", "/nonexistent/j.db"], EXIT_JOURNAL, "no such journal file"),
        ([], EXIT_CONFIG, "--data: give the candle file"),
    ],
    ids=["trials-zero", "seed-negative", "bad-data", "missing-journal", "no-data"],
)
def test_bad_advise_input_is_one_clear_line(
    setup: tuple[Path, Path, str], args: list[str], code: int, fragment: str
) -> None:
    config, _, data = setup
    base = ["advise", "--config", str(config)]
    if "--data" not in args and args != []:
        base += ["--data", data]
    result = runner.invoke(app, [*base, *args])
    assert result.exit_code == code, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_an_unknown_suggestion_id_and_a_journal_that_is_not_one_are_refused(
    setup: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, journal, _ = setup
    unknown = runner.invoke(
        app, ["suggestions", "accept", "nope", "--journal", str(journal), "--config", str(config), "--yes"]
    )
    assert unknown.exit_code == EXIT_CONFIG
    assert "nope: no such suggestion" in unknown.output
    other = tmp_path / "other.db"
    other.write_text("not sqlite at all")
    shown = runner.invoke(app, ["suggestions", "list", "--journal", str(other)])
    assert shown.exit_code == EXIT_JOURNAL
    assert "Traceback" not in shown.output


def test_candles_of_another_period_than_the_journal_are_refused(
    setup: tuple[Path, Path, str], data_dir: Path
) -> None:
    config, journal, _ = setup
    other = f"BTC/USDT={data_dir / 'binance_BTC-USDT_1m_20210917-20211017.csv.gz'}"
    result = runner.invoke(
        app, ["advise", "--config", str(config), "--journal", str(journal), "--data", other]
    )
    assert result.exit_code == EXIT_CONFIG
    assert "do not cover the journal's period" in result.output


def test_a_symbol_with_no_fills_in_the_journal_is_a_clear_error(
    setup: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, _, data = setup
    from nutcracker.store.sqlite import SqliteJournal

    journal = tmp_path / "quiet.db"
    with SqliteJournal(journal) as j:
        j.record_params("BTC/USDT", "{}", "config", "engine start", 1_721_952_000_000)
    result = runner.invoke(
        app, ["advise", "--config", str(config), "--journal", str(journal), "--data", data]
    )
    assert result.exit_code == EXIT_CONFIG
    assert "has no fills for it" in result.output


def test_an_empty_journal_gives_a_clear_error(setup: tuple[Path, Path, str], tmp_path: Path) -> None:
    config, _, data = setup
    from nutcracker.store.sqlite import SqliteJournal

    empty = tmp_path / "empty.db"
    SqliteJournal(empty).close()
    result = runner.invoke(app, ["advise", "--config", str(config), "--journal", str(empty), "--data", data])
    assert result.exit_code == EXIT_CONFIG
    assert "holds no history yet" in result.output
