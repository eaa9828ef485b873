"""Backtests with real trade prints and top-of-book updates (the 2024-08-08 Binance BTC/USDT sample).

A tight market-making config rests a buy at the touch just before the prints begin, so the
prints decide when, and whether, it fills.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nutcracker.backtest.checker import check_backtest
from nutcracker.backtest.runner import BacktestResult, run_backtest
from nutcracker.cli import app
from nutcracker.config import NutcrackerConfig, load_config
from nutcracker.core.model import Side
from nutcracker.errors import DataError
from nutcracker.marketdata.candles import (
    BboArrays,
    CandleArrays,
    TradeArrays,
    load_bbo_csv,
    load_candles_csv,
    load_trades_csv,
    write_candles_csv,
)

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def tight_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The market-making example quoting 2 bps around the mean on a zero-fee market."""
    text = (ROOT / "examples" / "market-making-btc-usdt.toml").read_text()
    for old, new in (
        ('half_spread_bps = "30"', 'half_spread_bps = "2"'),
        ('requote_bps = "5"', 'requote_bps = "1"'),
        ('maker_fee_bps = "10"', 'maker_fee_bps = "0"'),
        ('min_net_bps = "20"', 'min_net_bps = "1"'),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("config") / "mm-tight.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def market(
    tight_config: Path, data_dir: Path
) -> tuple[NutcrackerConfig, CandleArrays, TradeArrays, BboArrays]:
    config = load_config(tight_config)
    precision = config.symbols[0].market.precision
    candles = load_candles_csv(data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz", precision, SYMBOL)
    prints = load_trades_csv(data_dir / "binance_BTC-USDT_trades.csv.gz", precision, SYMBOL)
    quotes = load_bbo_csv(data_dir / "binance_BTC-USDT_bbo.csv.gz", precision, SYMBOL)
    warmup = config.symbols[0].warmup_candles  # candles before the first print: ready just before it
    start = int(np.searchsorted(candles.ts_ms, prints.ts_ms[0])) - warmup
    return config, candles.slice(start, start + warmup + 30), prints, quotes


def _run(
    market: tuple[NutcrackerConfig, CandleArrays, TradeArrays, BboArrays], *, bbo: bool, skip: bool = True
) -> BacktestResult:
    config, candles, prints, quotes = market
    return run_backtest(
        config,
        {SYMBOL: candles},
        skip=skip,
        prints={SYMBOL: prints},
        quotes={SYMBOL: quotes} if bbo else None,
    )


def _prints_at(prints: TradeArrays, ts_ms: int) -> list[tuple[int, Side]]:
    """Return (price, taker side) of the prints at ``ts_ms`` (several may share a millisecond)."""
    at = np.flatnonzero(prints.ts_ms == ts_ms).tolist()
    return [(int(prints.price[k]), Side.BUY if prints.taker_is_buy[k] else Side.SELL) for k in at]


def test_prints_fill_our_orders_at_their_own_times_and_only_by_trading_through_them(
    market: tuple[NutcrackerConfig, CandleArrays, TradeArrays, BboArrays],
) -> None:
    _, candles, prints, _ = market
    with_prints = _run(market, bbo=False)
    candles_only = run_backtest(market[0], {SYMBOL: candles})

    # the fills while prints exist (after the last print the candle rule fills again)
    covered_fills = [f for f in with_prints.engine.fills if prints.ts_ms[0] <= f.ts_ms <= prints.ts_ms[-1]]
    assert covered_fills, "the sample's prints should reach the buy resting at the touch"
    for fill in covered_fills:
        # no book sizes: the queues are unknown, so a print fills only what it trades through
        at = _prints_at(prints, fill.ts_ms)
        assert any(
            price < fill.price if taker is Side.SELL else price > fill.price
            for price, taker in at
            if taker is not fill.side
        ), (fill, at)
    # a print comes before the candle's close, where the candle rule fills
    first = covered_fills[0]
    same_order = [f for f in candles_only.engine.fills if f.client_order_id == first.client_order_id]
    assert same_order
    assert first.ts_ms < same_order[0].ts_ms


def test_top_of_book_updates_give_the_pulses_the_real_book(
    market: tuple[NutcrackerConfig, CandleArrays, TradeArrays, BboArrays],
) -> None:
    _, _, prints, quotes = market
    result = _run(market, bbo=True)
    # the placements while recorded quotes exist (after the last one the candles give the book)
    placed = [
        e
        for e in result.engine.events
        if e.event == "placed" and prints.ts_ms[0] <= e.ts_ms <= quotes.ts_ms[-1]
    ]
    assert placed
    for e in placed:  # post-only against the recorded book in force at the pulse
        row = int(np.searchsorted(quotes.ts_ms, e.ts_ms, side="right")) - 1
        bid, ask = int(quotes.bid[row]), int(quotes.ask[row])
        assert e.price < ask if e.side is Side.BUY else e.price > bid
    assert any(f.ts_ms >= prints.ts_ms[0] for f in result.engine.fills)


@pytest.mark.parametrize("bbo", [False, True], ids=["trades", "trades+bbo"])
def test_skipping_candles_changes_nothing_with_prints_and_quotes(
    market: tuple[NutcrackerConfig, CandleArrays, TradeArrays, BboArrays], bbo: bool
) -> None:
    skipped, every = _run(market, bbo=bbo), _run(market, bbo=bbo, skip=False)
    assert skipped.engine.events == every.engine.events
    assert skipped.engine.fills == every.engine.fills
    assert skipped.traces[SYMBOL].pulses < every.traces[SYMBOL].pulses


def test_the_cli_backtests_with_trades_and_bbo_and_the_checker_agrees(
    tmp_path: Path,
    tight_config: Path,
    data_dir: Path,
    market: tuple[NutcrackerConfig, CandleArrays, TradeArrays, BboArrays],
) -> None:
    config, candles, _, _ = market
    csv = tmp_path / "btc-window.csv.gz"
    write_candles_csv(csv, candles, config.symbols[0].market.precision)
    for extra, touch in (([], False), (["--bbo", str(data_dir / "binance_BTC-USDT_bbo.csv.gz")], True)):
        out = tmp_path / f"out-{len(extra)}"
        args = [
            "backtest",
            "--config",
            str(tight_config),
            "--data",
            str(csv),
            "--out",
            str(out),
            "--no-report",
        ]
        args += ["--trades", str(data_dir / "binance_BTC-USDT_trades.csv.gz"), *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert len((out / "fills.csv").read_text().splitlines()) > 1
        # with book sizes a print at an order's price may fill it (after the queue ahead): a touch
        report = check_backtest(out, tight_config, {SYMBOL: csv}, allow_touch=touch)
        assert report.ok, report.text()


def test_a_bad_bbo_file_is_refused_with_the_line_and_the_fix(tmp_path: Path) -> None:
    config = load_config(ROOT / "examples" / "grid-btc-usdt.toml")
    precision = config.symbols[0].market.precision
    bad = tmp_path / "binance_BTC-USDT_bbo.csv"
    header = "timestamp,bid,bid_size,ask,ask_size\n"
    cases = (
        ("1,100.00,1.5,100.00,2\n", ":2: ask '100.00' is not above the bid"),
        ("1,100.005,1.5,100.01,2\n", ":2: bid '100.005' is not a multiple of the tick 0.01"),
        ("2,100.00,1,100.01,1\n1,100.00,1,100.01,1\n", ":3: timestamp '1' is earlier"),
    )
    for body, message in cases:
        bad.write_text(header + body)
        with pytest.raises(DataError, match=message):
            load_bbo_csv(bad, precision)
    bad.write_text("timestamp,bid,ask\n")
    with pytest.raises(DataError, match="header is"):
        load_bbo_csv(bad, precision)


def test_prints_for_a_symbol_the_config_does_not_trade_are_refused(
    market: tuple[NutcrackerConfig, CandleArrays, TradeArrays, BboArrays],
) -> None:
    config, candles, prints, _ = market
    with pytest.raises(ValueError, match="ETH/USDT, which the config does not trade"):
        run_backtest(config, {SYMBOL: candles}, prints={"ETH/USDT": prints})
