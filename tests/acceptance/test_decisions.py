"""decisions.csv and cancel reasons: backtests and replays explain themselves in the user's units."""

from __future__ import annotations

import asyncio
import csv
import re
from itertools import pairwise
from pathlib import Path

import pytest

from nutcracker.app.kernel import build_replay
from nutcracker.backtest.output import write_outputs
from nutcracker.backtest.runner import BacktestResult, run_backtest
from nutcracker.config import NutcrackerConfig, load_config
from nutcracker.marketdata.candles import CandleArrays, load_candles_csv
from nutcracker.replay.driver import run_replay
from nutcracker.store.memory import InMemoryJournal

ROOT = Path(__file__).resolve().parents[2]
CORE_UNITS = re.compile(r"\bppm\b|\blots\b|\bqu\b|\bticks?\b")


def _setup(name: str, data_dir: Path) -> tuple[NutcrackerConfig, dict[str, CandleArrays]]:
    config = load_config(ROOT / "examples" / f"{name}.toml")
    market = config.symbols[0].market
    path = data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
    return config, {market.symbol: load_candles_csv(path, market.precision).slice(0, 3000)}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _check(result: BacktestResult, config: NutcrackerConfig, out: Path) -> None:
    write_outputs(result, config, out, report=True)
    decisions = _rows(out / "decisions.csv")
    assert len(decisions) >= 3
    assert decisions[0]["state"] == "warming up"
    assert {row["state"] for row in decisions} & {"flat", "holding", "loaded"}
    for row in decisions:
        assert not CORE_UNITS.search(row["explanation"]), row
    keys = [(row["state"], row["explanation"]) for row in decisions]
    assert all(a != b for a, b in pairwise(keys))  # a row only where it changed
    assert decisions == sorted(decisions, key=lambda row: int(row["ts_ms"]))
    cancels = [row for row in _rows(out / "orders.csv") if row["event"] == "cancelled"]
    assert cancels
    for row in cancels:
        assert row["reason"], row
        assert not CORE_UNITS.search(row["reason"]), row
        assert not row["reason"].endswith("is no longer wanted"), row
    assert "decisions" in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["trailing-grid-btc-usdt", "hybrid-btc-usdt"])
def test_a_backtest_writes_decisions_and_every_cancel_says_why(
    name: str, data_dir: Path, tmp_path: Path
) -> None:
    config, data = _setup(name, data_dir)
    _check(run_backtest(config, data, skip=True), config, tmp_path)


def test_a_replay_writes_decisions_and_every_cancel_says_why(data_dir: Path, tmp_path: Path) -> None:
    config, data = _setup("trailing-grid-btc-usdt", data_dir)
    setup = build_replay(config, data, InMemoryJournal())
    result = asyncio.run(
        run_replay(setup, data, speed=0, candles=None, on_report=lambda r: None, stop=asyncio.Event())
    )
    _check(result, config, tmp_path)
