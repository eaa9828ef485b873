"""Backtests end to end: determinism, skipping parity, the output contract and the independent checker."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nutcracker.backtest.checker import check_backtest
from nutcracker.backtest.runner import run_backtest
from nutcracker.cli import app
from nutcracker.config import NutcrackerConfig, load_config
from nutcracker.marketdata.candles import load_candles_csv
from nutcracker.simexchange.accounts import load_market

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.toml") if p.stem != "multi-symbol")
SUMMARY_KEYS = (
    "candles",
    "elapsed_s",
    "candles_per_s",
    "fills",
    "orders_placed",
    "post_only_rejects",
    "cycles_closed",
    "realized_pnl_quote",
    "fees_quote",
    "max_inventory_base",
    "max_committed_quote",
    "rail_violations",
    "final_equity_quote",
    "buy_and_hold_equity_quote",
    "max_drawdown_pct",
    "config",
)


def _data_for(config_path: Path, data_dir: Path) -> Path:
    base, quote = load_config(config_path).symbols[0].market.symbol.split("/")
    return data_dir / f"binance_{base}-{quote}_1m.csv.gz"


def _backtest(tmp_path: Path, config: Path, *extra: str) -> Path:
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    result = CliRunner().invoke(app, ["backtest", "--config", str(config), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


def test_the_backtest_writes_the_output_contract(tmp_path: Path) -> None:
    out = _backtest(tmp_path, ROOT / "examples" / "grid-btc-usdt.toml", "--synthetic", "5000")
    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["rail_violations"] == 0
    assert summary["candles"] == 5000
    assert (out / "fills.csv").read_text().splitlines()[0] == (
        "ts_ms,symbol,side,price,qty,fee_quote,client_order_id,cycle_id,liquidity,fee_base,fee_asset,commission"
    )
    orders_header = (out / "orders.csv").read_text().splitlines()[0]
    assert orders_header == "ts_ms,symbol,event,side,price,qty,client_order_id,reason"
    assert summary["fills"] == len((out / "fills.csv").read_text().splitlines()) - 1
    html = (out / "report.html").read_text()
    assert all(f'id="{kind}-0"' in html for kind in ("price", "equity", "inventory", "cycles"))


def test_every_backtest_reports_the_static_grids_and_buy_and_hold_beside_the_strategy(
    tmp_path: Path, data_dir: Path
) -> None:
    csv = data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
    out = _backtest(tmp_path, ROOT / "examples" / "grid-btc-usdt.toml", "--data", str(csv))
    section = json.loads((out / "summary.json").read_text())["symbols"]["BTC/USDT"]
    baselines = section["baselines"]
    assert set(baselines) == {"buy_and_hold", "static_grid_0.5pct", "static_grid_1pct", "static_grid_2pct"}
    assert baselines["buy_and_hold"]["final_equity_quote"] == section["buy_and_hold_equity_quote"]
    budget = Decimal(2000)  # the example's max_quote
    for name in ("static_grid_0.5pct", "static_grid_1pct", "static_grid_2pct"):
        grid = baselines[name]
        assert grid["fills"] > 0, name  # a month of BTC crosses levels 0.5-2 % apart
        assert grid["cycles"] <= grid["fills"]
        expected = float((Decimal(grid["final_equity_quote"]) - budget) / budget * 100)
        assert grid["return_pct"] == pytest.approx(expected, abs=1e-4)
        assert Decimal(grid["lower"]) < Decimal(grid["upper"])
    expected = float((Decimal(section["final_equity_quote"]) - budget) / budget * 100)
    assert section["return_pct"] == pytest.approx(expected, abs=1e-4)
    html = (out / "report.html").read_text()
    assert all(f"static grid {pct} %" in html for pct in ("0.5", "1", "2"))
    assert 'id="yardsticks-BTC/USDT"' in html
    # what a trader reads first
    assert section["first_candle"] == "2024-07-26 14:15 UTC"
    assert section["days"] == pytest.approx(30.0, abs=0.01)
    assert section["cycles_per_day"] == pytest.approx(section["cycles_closed"] / section["days"], rel=1e-3)
    assert 0 <= section["loaded_pct"] <= section["in_market_pct"] <= 100
    assert 0 <= section["at_rail_pct"] <= 100
    assert 0 <= section["two_sided_pct"] <= 100
    assert section["cancels_per_fill"] is not None


def test_two_runs_on_the_same_inputs_give_byte_identical_fills_and_orders(
    tmp_path: Path, data_dir: Path
) -> None:
    config = ROOT / "examples" / "hybrid-btc-usdt.toml"
    csv = data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
    first = _backtest(tmp_path, config, "--data", str(csv), "--no-report")
    second = _backtest(tmp_path, config, "--data", str(csv), "--no-report")
    for name in ("fills.csv", "orders.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert len((first / "fills.csv").read_text().splitlines()) > 10


@pytest.mark.parametrize("config_path", EXAMPLES, ids=lambda p: p.stem)
def test_skipping_candles_changes_no_fill_and_no_order(config_path: Path, data_dir: Path) -> None:
    config = load_config(config_path)
    symbol = config.symbols[0].market
    candles = load_candles_csv(_data_for(config_path, data_dir), symbol.precision).slice(0, 15_000)
    fast = run_backtest(config, {symbol.symbol: candles}, skip=True)
    slow = run_backtest(config, {symbol.symbol: candles}, skip=False)
    assert fast.engine.events == slow.engine.events
    assert fast.engine.fills == slow.engine.fills
    fast_state, slow_state = fast.traces[symbol.symbol].final_state, slow.traces[symbol.symbol].final_state
    assert fast_state is not None
    assert slow_state is not None
    # equal but for the indicators, which are those of each run's last pulse
    assert replace(fast_state, indicators=slow_state.indicators) == slow_state
    assert slow.traces[symbol.symbol].pulses == 15_000
    assert fast.traces[symbol.symbol].pulses < 15_000
    assert len(fast.engine.fills) > 0


def _retarget(config_path: Path, data_file: Path, out: Path) -> tuple[Path, str]:
    """Write the example config re-aimed at another market: its symbol, tick, lot and rails in base."""
    spec = load_market(data_file)
    info = spec.info
    config = load_config(config_path)
    last = spec.candles.close[-1] * info.tick_size
    symbol = config.symbols[0]
    budget = symbol.rails.max_quote
    market = symbol.market.model_copy(
        update={
            "symbol": info.symbol,
            "tick_size": info.tick_size,
            "lot_size": info.lot_size,
            "min_notional": info.min_notional if info.min_notional > 0 else info.lot_size * last * 2,
        }
    )
    max_base = (budget / last * 2).quantize(info.lot_size)
    rails = symbol.rails.model_copy(update={"max_base": max_base})
    mm = symbol.market_making.model_copy(update={"inventory_target": (max_base / 4).quantize(info.lot_size)})
    data = json.loads(config.model_dump_json())
    data["symbol"][0]["market"] = json.loads(market.model_dump_json())
    data["symbol"][0]["rails"] = json.loads(rails.model_dump_json())
    data["symbol"][0]["market_making"] = json.loads(mm.model_dump_json())
    retargeted = NutcrackerConfig.model_validate(data)
    path = out / f"{config_path.stem}-{data_file.name}.toml"
    path.write_text(retargeted.to_toml())
    return path, info.symbol


@pytest.mark.slow
def test_the_independent_checker_finds_nothing_on_every_data_file_and_example(
    tmp_path: Path, data_dir: Path
) -> None:
    files = sorted(data_dir.glob("*_1m*.csv.gz"))
    assert len(files) >= 15
    for data_file in files:
        for config_path in EXAMPLES:
            config, symbol = _retarget(config_path, data_file, tmp_path)
            out = _backtest(tmp_path, config, "--data", f"{symbol}={data_file}", "--no-report")
            report = check_backtest(out, config, {symbol: data_file})
            assert report.ok, f"{config_path.stem} on {data_file.name}: {report.text()}"
            summary = json.loads((out / "summary.json").read_text())
            assert summary["rail_violations"] == 0
            assert Decimal(summary["fees_quote"]) >= 0
