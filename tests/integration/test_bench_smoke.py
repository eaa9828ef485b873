"""The engine benchmark still runs (a tiny run: it checks the script works, not the speed)."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "engine.py"


def test_the_engine_benchmark_runs_and_prints_its_verdict() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--symbols", "20", "--rounds", "10"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "symbol-pulses per second" in result.stdout
    assert "targets: >= 5000 symbol-pulses/s:" in result.stdout


def test_the_store_comparison_runs_and_accounts_for_the_cpu() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server; .ci/run does it)")
    result = subprocess.run(
        [sys.executable, str(BENCH), "--store", "redis", "--symbols", "6", "--rounds", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 workers / 1 worker (Redis everysec)" in result.stdout
    assert "where the CPU went" in result.stdout
    assert "Redis everysec, 2 worker processes" in result.stdout
    assert "pulses/s at most on this machine" in result.stdout


def test_the_strategy_benchmark_runs_one_window_and_prints_its_verdict() -> None:
    bench = BENCH.parent / "strategy.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--examples", "grid-btc-usdt", "--files", "*ETH-BTC*", "--windows", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ETH/BTC 2021-09-18 +29d" in result.stdout
    assert "targets: wins >= 70%" in result.stdout


def test_the_strategy_benchmark_benches_a_config_of_your_own(tmp_path: Path) -> None:
    mine = tmp_path / "wider-grid.toml"
    example = (BENCH.parents[1] / "examples" / "grid-btc-usdt.toml").read_text()
    wider = example.replace('spacing_bps = "100"', 'spacing_bps = "200"')
    assert wider != example  # the example still spaces its grid 100 bps: this bench is of another config
    mine.write_text(wider)
    argv = ["--config", str(mine), "--files", "*ETH-BTC*", "--windows", "1"]
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "strategy.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("wider-grid ")]
    assert len(rows) == 2  # its run, then its verdict; no example ran beside it
    assert "ETH/BTC 2021-09-18 +29d" in rows[0]
    assert "grid-btc-usdt" not in result.stdout


_GRID = (Path(__file__).resolve().parents[2] / "examples" / "grid-btc-usdt.toml").read_text()
_TWO = _GRID + _GRID[_GRID.index("[[symbol]]") :].replace("BTC/USDT", "ETH/USDT")


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        (None, None, "no such file"),
        ("broken.toml", "[engine\n", "invalid TOML: Expected ']' at the end of a table declaration"),
        (
            "spacing.toml",
            _GRID.replace('spacing_bps = "100"', 'spacing_bps = "-5"'),
            "symbol[0].grid.spacing_bps",
        ),
        ("two.toml", _TWO, "it names 2 symbols; the bench re-aims one: keep one [[symbol]] table"),
    ],
)
def test_the_strategy_benchmark_refuses_a_bad_config_in_one_line(
    tmp_path: Path, name: str | None, text: str | None, says: str
) -> None:
    path = tmp_path / (name or "missing.toml")
    if text is not None:
        path.write_text(text)
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "strategy.py"), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout[-2000:]
    error = result.stderr.strip().splitlines()[-1]  # after argparse's usage lines: one line
    assert error.startswith(f"strategy.py: error: --config {path}: ")
    assert says in error
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "rows", "says"),
    [
        ("candles.csv.gz", b"x\n", "cannot read a symbol from file name 'candles.csv.gz'"),
        ("binance_BTC-USDT_1m.csv.gz", b"ts,open\n1,2\n", "header is 'ts,open'"),
    ],
)
def test_the_strategy_benchmark_refuses_data_it_cannot_read_in_one_line(
    tmp_path: Path, name: str, rows: bytes, says: str
) -> None:
    (tmp_path / name).write_bytes(gzip.compress(rows))
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "strategy.py"), "--examples", "grid", "--files", name],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NUTCRACKER_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 2, result.stdout[-2000:]
    assert result.stderr.startswith("strategy.py: error: ")
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_console_benchmark_runs_and_prints_its_verdict() -> None:
    sys.path.insert(0, str(BENCH.parents[1] / "tests" / "integration" / "console"))
    from console_stack import why_not_runnable

    why = why_not_runnable()
    if why:
        pytest.skip(why)
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "console.py"), "--symbols", "5", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "login -> overview drawn (Chromium)" in result.stdout
    assert "targets: login -> overview <= 2 s" in result.stdout


def test_the_decide_benchmark_reaches_its_busy_state_and_prints_its_verdict() -> None:
    # it once stopped at "the walk never reached 20 resting orders" when the grid began to keep its
    # buys resting while it held lots: `make bench` failed and nothing said so
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "decide.py")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    assert "target median <= 50 µs per decide call:" in result.stdout


@pytest.mark.parametrize(
    ("script", "argv", "says"),
    [
        ("api.py", ["--repeat", "0"], "argument --repeat: 0 is too few: give at least 1"),
        ("api.py", ["--repeat", "two"], "argument --repeat: 'two' is not a whole number"),
        ("api.py", ["--symbols", "-3"], "argument --symbols: -3 is too few: give at least 1"),
        ("api.py", ["--clients", "0"], "argument --clients: 0 is too few: give at least 1"),
        ("api.py", ["--subscribers", "0"], "argument --subscribers: 0 is too few: give at least 1"),
        ("api.py", ["--seconds", "0"], "argument --seconds: 0 seconds: give a number above 0"),
        ("api.py", ["--seconds", "nan"], "argument --seconds: nan seconds: give a number above 0"),
        ("api.py", ["--interval", "soon"], "argument --interval: 'soon' is not a number of seconds"),
        (
            "api.py",
            ["--journal-dir", "/no/such/dir"],
            "argument --journal-dir: /no/such/dir: no such directory",
        ),
        ("inbox.py", ["--symbols", "0"], "--symbols: give 1 to 10000"),
        ("inbox.py", ["--seconds", "0.1"], "--seconds: give 0.5 to 600"),
        ("inbox.py", ["--commands", "0"], "--commands: give 1 to 100000"),
        ("inbox.py", ["--repeat", "x"], "argument --repeat: invalid int value"),
        ("commands.py", ["--rows", "0"], "--rows: give 1 to 10000000"),
        ("commands.py", ["--rows", "10", "--lookups", "11"], "--lookups: give 1 to --rows (10)"),
        ("commands.py", ["--lookups", "x"], "argument --lookups: invalid int value"),
    ],
)
def test_a_benchmark_refuses_bad_options_in_one_line(script: str, argv: list[str], says: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / script), *argv], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_benchmark_runs_both_loads_between_alone_passes() -> None:
    api_bench = BENCH.parent / "api.py"
    argv = ["--symbols", "4", "--seconds", "0.3", "--clients", "3", "--subscribers", "2"]
    argv += ["--repeat", "2", "--interval", "0.2"]
    result = subprocess.run(
        [sys.executable, str(api_bench), *argv], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "median of 5 passes, one before and after every loaded pass" in result.stdout
    for load in ("saturation", "realistic"):
        assert f"[{load}] GET status p50 / p99" in result.stdout
        assert f"[{load}] SSE delay p50 / p99" in result.stdout
        assert f"[{load}]   of which in the server" in result.stdout
        assert f"[{load}]   the loop's CPU per round, loaded / alone" in result.stdout
    assert "[realistic] engine symbol-pulses/s under that load (2 passes" in result.stdout
    assert "of a core on this machine" in result.stdout
    assert "[control] engine alone beside a busy process using" in result.stdout


def test_the_api_benchmark_measures_fleet_mode_against_serve_store() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server; .ci/run does it)")
    argv = ["--fleet", "--symbols", "3", "--seconds", "1", "--clients", "3", "--subscribers", "2"]
    argv += ["--repeat", "1", "--interval", "0.2"]
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "api.py"), *argv], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "[saturation]" not in out  # the fleet run alone

    def row(name: str, value: str) -> re.Match[str]:
        """The ``[fleet]`` row named ``name`` (a regex) whose value column matches ``value``."""
        found = re.search(rf"^\[fleet\] {name} +{value}(?= |$)", out, re.MULTILINE)
        assert found, f"no [fleet] row {name!r} with a value {value!r} in:\n{out}"
        return found

    n = r"-?[\d,]+(?:\.\d+)?"  # a number as the table prints it (not nan)
    row(r"engine symbol-pulses/s, serve --store up, no client \(\d+ rounds x 3 symbols\)", n)
    row(r"engine symbol-pulses/s under that load \(1 passes, \d+\+ rounds\)", f"{n}  loss {n} %")
    row(r"  the loop's CPU per round, loaded / alone", f"{n} / {n} ms")
    status = row(r"GET status p50 / p99 \((\d+) requests, 0 errors\)", f"{n} / {n} ms")
    assert int(status[1]) > 0
    sse = row(r"SSE delay p50 / p99 \((\d+) deliveries of (\d+) events x 2 subscribers\)", f"{n} / {n} ms")
    assert 0 < int(sse[1]) <= 2 * int(sse[2])  # every event reaches each subscriber once at most


def test_the_inbox_benchmark_compares_the_doorbell_with_a_script_every_poll() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server; .ci/run does it)")
    argv = ["--symbols", "5", "--seconds", "0.5", "--commands", "4", "--repeat", "1"]
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "inbox.py"), *argv], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    n = r"[\d.]+"
    for name, unit in (
        ("redis-server CPU, share of a core", "%"),
        ("this process's CPU \\(receivers \\+ sender\\)", "%"),
        ("delay send -> receipt p50", "ms"),
        ("delay send -> receipt p99", "ms"),
    ):
        assert re.search(rf"^{name} +{n} {unit} +{n} {unit} +{n}x$", result.stdout, re.MULTILINE), (
            result.stdout
        )


def test_the_command_lookup_benchmark_compares_the_index_with_the_scan_it_replaced() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "commands.py"), "--rows", "3000", "--lookups", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    n = r"[\d.]+"
    for name in ("an id not journaled \\(a new one\\)", "the last id journaled"):
        assert re.search(rf"^{name} +{n} +{n} +{n}x$", result.stdout, re.MULTILINE), result.stdout
