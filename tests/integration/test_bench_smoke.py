"""The engine benchmark still runs (a tiny run: it checks the script works, not the speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
