"""Parity: the backtester and the live engine's pulse loop over SimExchange make the same orders and fills."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nutcracker.app.kernel import build_replay
from nutcracker.backtest.runner import run_backtest
from nutcracker.config import load_config
from nutcracker.marketdata.candles import load_candles_csv
from nutcracker.replay.driver import run_replay
from nutcracker.store.memory import InMemoryJournal

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["grid-btc-usdt", "hybrid-btc-usdt", "martingale-dca-eth-usdt"])
def test_backtest_and_live_engine_make_identical_intents_and_fills(name: str, data_dir: Path) -> None:
    loaded = load_config(ROOT / "examples" / f"{name}.toml")
    # the backtester leaves its last orders resting; so does this engine at its end
    config = loaded.model_copy(
        update={"engine": loaded.engine.model_copy(update={"cancel_on_shutdown": False})}
    )
    market = config.symbols[0].market
    base, quote = market.symbol.split("/")
    candles = load_candles_csv(data_dir / f"binance_{base}-{quote}_1m.csv.gz", market.precision).slice(
        0, 3000
    )
    data = {market.symbol: candles}

    backtest = run_backtest(config, data, skip=True)
    setup = build_replay(config, data, InMemoryJournal(), warmup=0)
    replay = asyncio.run(
        run_replay(setup, data, speed=0, candles=None, on_report=lambda r: None, stop=asyncio.Event())
    )

    def orders(events: list) -> list[tuple]:  # type: ignore[type-arg]
        # the live engine may cancel resting orders at shutdown; compare everything before it
        return [
            (e.ts_ms, e.event, e.side, e.price, e.qty, e.client_order_id) for e in events if e.ts_ms <= last
        ]

    last = int(candles.ts_ms[-1]) + candles.interval_ms - 1
    assert orders(replay.engine.events) == orders(backtest.engine.events)
    assert replay.engine.fills == backtest.engine.fills
    assert len(backtest.engine.fills) > 0


@pytest.mark.parametrize("name", ["grid-btc-usdt", "trailing-grid-btc-usdt"])
def test_replay_by_default_starts_on_the_backtests_first_candle(name: str, data_dir: Path) -> None:
    """``build_replay`` without a warm-up pulses from the first candle, as the backtest does (issue 13.8)."""
    loaded = load_config(ROOT / "examples" / f"{name}.toml")
    config = loaded.model_copy(
        update={"engine": loaded.engine.model_copy(update={"cancel_on_shutdown": False})}
    )
    market = config.symbols[0].market
    path = data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
    candles = load_candles_csv(path, market.precision).slice(0, 4000)
    data = {market.symbol: candles}

    backtest = run_backtest(config, data, skip=True)
    setup = build_replay(config, data, InMemoryJournal())
    replay = asyncio.run(
        run_replay(setup, data, speed=0, candles=None, on_report=lambda r: None, stop=asyncio.Event())
    )

    def placed(events: list) -> list[tuple]:  # type: ignore[type-arg]
        return [(e.ts_ms, e.side, e.price, e.qty) for e in events if e.event == "placed"]

    first_backtest, first_replay = placed(backtest.engine.events), placed(replay.engine.events)
    assert first_backtest
    assert first_replay[:3] == first_backtest[:3]
    assert replay.engine.fills == backtest.engine.fills
    assert len(backtest.engine.fills) > 0
