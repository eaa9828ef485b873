"""The static-grid yardstick: levels, fills by the matching engine's rule, equity that adds up."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from nutcracker.backtest.baseline import GridShape, grid_prices, run_static_grid
from nutcracker.core.model import MarketInfo
from nutcracker.marketdata.candles import CandleArrays

INFO = MarketInfo(
    "BTC/USDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal(5), Decimal("0.001")
)


def candles(closes: list[int], wick: int = 0) -> CandleArrays:
    """One-minute candles from ``closes`` (ticks): each opens at the previous close."""
    c = np.asarray(closes, dtype=np.int64)
    o = np.concatenate([c[:1], c[:-1]])
    return CandleArrays(
        np.arange(len(c), dtype=np.int64) * 60_000,
        o,
        np.maximum(o, c) + wick,
        np.minimum(o, c) - wick,
        c,
        np.ones(len(c)),
        60_000,
        "BTC/USDT",
    )


def test_geometric_levels_are_spacing_apart_and_rounded_away_from_the_centre() -> None:
    prices = grid_prices(1_000_000, 10_000, 3, GridShape.GEOMETRIC)
    assert len(prices) == 7
    assert prices[3] == 1_000_000
    assert prices[4] == 1_010_000
    assert prices[2] == 990_099  # 1e6 / 1.01 = 990099.0099, floored for a buy
    assert prices[6] == 1_030_301


def test_arithmetic_levels_are_a_constant_step() -> None:
    prices = grid_prices(1_000_000, 10_000, 2, GridShape.ARITHMETIC)
    assert prices == [980_000, 990_000, 1_000_000, 1_010_000, 1_020_000]


def test_a_grid_that_does_not_fit_the_tick_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit the tick grid"):
        grid_prices(100, 1_000, 10, GridShape.GEOMETRIC)  # 0.1 % of 100 ticks is below one tick


def test_an_oscillating_market_closes_round_trips_at_a_profit() -> None:
    # 1 % grid around 50,000.00; the price swings one level down and back up, ten times
    closes = [5_000_000] + [4_940_000, 5_060_000] * 10
    result = run_static_grid(INFO, candles(closes), Decimal(1000), 10_000, levels=5)
    assert result.cycles >= 10
    assert result.final_equity_quote > Decimal(1000)
    assert result.equity[-1] == pytest.approx(float(result.final_equity_quote))


def test_a_touch_does_not_fill() -> None:
    # the low touches the first buy level exactly: the matching engine's rule needs a trade through it
    first_buy = grid_prices(5_000_000, 10_000, 5, GridShape.GEOMETRIC)[4]
    closes = [5_000_000, first_buy, 5_000_000]
    result = run_static_grid(INFO, candles(closes), Decimal(1000), 10_000, levels=5)
    assert result.fills == 0


def test_a_flat_market_only_pays_the_initial_buy() -> None:
    result = run_static_grid(INFO, candles([5_000_000] * 500), Decimal(1000), 10_000, levels=5)
    assert result.fills == 0
    # nearly half the budget bought the sells' base at the first close (each level's quote buys
    # the base at the level below the sell, a little less at the centre), at the maker fee
    assert Decimal("0.47") < result.fees_quote < Decimal("0.50")
    assert result.final_equity_quote == Decimal(1000) - result.fees_quote
    assert np.allclose(result.equity, float(result.final_equity_quote))


def test_a_crash_through_the_grid_ends_holding_every_buy_level() -> None:
    closes = [5_000_000 - 20_000 * i for i in range(100)]  # -40 % in a straight line
    result = run_static_grid(INFO, candles(closes, wick=1), Decimal(1000), 10_000, levels=5)
    assert result.cycles == 0
    assert result.fills == 5  # every buy level filled, nothing sold
    assert result.final_equity_quote < Decimal(1000)
