"""The yardstick: a static grid as exchange grid bots run it, on the same matching engine.

Users compare us with the grid bots their exchange offers (Binance, Pionex, Bitsgap): a fixed
ladder of levels between a lower and an upper price, where each level's buy, once filled, sells
one level up, and each sell, once filled, buys again one level down. The baseline is that bot with
nothing tuned on the future:

- its centre is the first candle's close (the only price it sees before it starts);
- ``levels`` buy levels below the centre and as many sell levels above, ``spacing`` apart
  (geometric: each level ``1 + spacing`` times the one below; arithmetic: a constant step of
  ``spacing`` x the centre);
- the budget, the symbol's ``max_quote``, is split evenly over its ``2 x levels`` grids: the
  levels below the centre rest buys, the levels above rest sells of base bought at the first
  close, as the bots' initial market buy does (at the maker fee: an exchange bot pays the taker
  fee there, so this favours the yardstick);
- it trades on the same ``MatchingEngine`` as the strategy, so the fees, the fee asset, the
  post-only rule and the fill rule (a candle must trade *through* a price) are the same. A level
  order refused as post-only (the close is already past it) is retried at the next candle.

"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from nutcracker.core.model import Book, Candle, MarketInfo, PlaceLimit, Side
from nutcracker.core.units import PPM, QU_PER_TICK_LOT, Precision
from nutcracker.errors import OrderRejectedError
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.marketdata.candles import CandleArrays

F32 = npt.NDArray[np.float32]

STATIC_GRID_SPACINGS_PPM = (5_000, 10_000, 20_000)  # 0.5, 1 and 2 %: the yardsticks every backtest reports
STATIC_GRID_LEVELS = 10
_LOOKAHEAD = 4096  # candles scanned at once for the next one that can fill


class GridShape(StrEnum):
    GEOMETRIC = "geometric"
    ARITHMETIC = "arithmetic"


@dataclass(frozen=True, slots=True)
class StaticGridResult:
    """What the static grid did over one symbol's candles."""

    spacing_ppm: int
    levels: int
    shape: GridShape
    lower: Decimal  # the lowest buy level
    upper: Decimal  # the highest sell level
    fills: int
    cycles: int  # sells filled: each closes one level's buy-sell round trip
    fees_quote: Decimal  # every fee valued in quote at its fill's price
    final_equity_quote: Decimal
    equity: F32  # per candle: quote + base x close (float32: a chart and a drawdown need no more)

    @property
    def label(self) -> str:
        return f"static grid {self.spacing_ppm / 10_000:g} %"

    def return_pct(self, budget: Decimal) -> float:
        return float((self.final_equity_quote - budget) / budget * 100) if budget else 0.0


def grid_prices(center: int, spacing_ppm: int, levels: int, shape: GridShape) -> list[int]:
    """Return the ``2 * levels + 1`` level prices in ticks, lowest first; ``center`` is the middle one.

    Buy levels round down and sell levels up, so no level sits nearer the centre than its spacing.
    """
    out: list[int] = []
    for k in range(-levels, levels + 1):
        if shape is GridShape.GEOMETRIC:
            exact = Decimal(center) * (Decimal(PPM + spacing_ppm) / PPM) ** k
        else:
            exact = Decimal(center) + Decimal(k * center * spacing_ppm) / PPM
        out.append(int(exact.to_integral_value(rounding="ROUND_FLOOR" if k < 0 else "ROUND_CEILING")))
    if len(set(out)) != len(out) or out[0] <= 0:
        raise ValueError(
            f"a static grid of {levels} levels {spacing_ppm / 10_000:g} % apart does not fit the tick "
            "grid at this price"
        )
    return out


def run_static_grid(
    info: MarketInfo,
    candles: CandleArrays,
    budget: Decimal,
    spacing_ppm: int,
    levels: int = STATIC_GRID_LEVELS,
    shape: GridShape = GridShape.GEOMETRIC,
) -> StaticGridResult:
    """Run the static grid over ``candles`` with ``budget`` quote, on a matching engine of its own."""
    symbol = info.symbol
    n = len(candles.ts_ms)
    precision = Precision(info.tick_size, info.lot_size)
    equity = np.zeros(n, dtype=np.float32)
    if n == 0:
        return StaticGridResult(
            spacing_ppm, levels, shape, Decimal(0), Decimal(0), 0, 0, Decimal(0), budget, equity
        )
    center = int(candles.close[0])
    prices = grid_prices(center, spacing_ppm, levels, shape)
    # The budget is split evenly over the 2 x levels grids: the ones below the centre rest buys,
    # the ones above hold the base their sells need, bought at the first close as the bots do.
    per_level_qu = precision.quote_to_qu(budget / (2 * levels))
    fee_ppm = int(info.maker_fee * PPM)
    want: dict[int, tuple[Side, int]] = {}  # level index -> the order it should rest there
    for k in range(levels):
        want[k] = (Side.BUY, _buy_lots(per_level_qu, prices[k], fee_ppm))
    initial_lots = 0
    for k in range(levels + 1, 2 * levels + 1):
        lots = _buy_lots(per_level_qu, prices[k - 1], fee_ppm)
        want[k] = (Side.SELL, lots)
        initial_lots += lots
    initial_cost = precision.qu_to_quote(center * initial_lots * (QU_PER_TICK_LOT + fee_ppm))
    start = {info.quote: budget - initial_cost, info.base: precision.lots_to_qty(initial_lots)}
    engine = MatchingEngine({symbol: info}, start)
    fees = precision.qu_to_quote(center * initial_lots * fee_ppm)
    level_of: dict[str, int] = {}
    seq = 0
    fills = cycles = 0
    engine.set_book(symbol, Book(center, center + 1))
    i = 0
    while i < n:
        candle = Candle(
            int(candles.ts_ms[i]),
            int(candles.open[i]),
            int(candles.high[i]),
            int(candles.low[i]),
            int(candles.close[i]),
        )
        ts = candle.ts_ms + candles.interval_ms - 1
        if i > 0:
            for fill in engine.on_candle(symbol, candle, candles.interval_ms):
                fills += 1
                k = level_of.pop(fill.client_order_id)
                fees += precision.qu_to_quote(fill.fee_value)  # a base commission at its fill price
                if fill.side is Side.BUY:
                    want[k + 1] = (Side.SELL, fill.qty)
                else:
                    cycles += 1
                    want[k - 1] = (Side.BUY, _buy_lots(per_level_qu, prices[k - 1], fee_ppm))
        for k in sorted(want):
            side, lots = want[k]
            if side is Side.SELL:  # no more than the account holds (a base fee took its cut of the buy)
                lots = min(lots, engine.free_units(symbol)[0])
            if lots <= 0:
                del want[k]
                continue
            seq += 1
            cid = f"grid-{seq}"
            try:
                engine.place(symbol, PlaceLimit(cid, side, prices[k], lots, "static grid level"), ts)
            except OrderRejectedError:
                continue  # post-only (the close is past the level) or too small: retry next candle
            del want[k]
            level_of[cid] = k
        equity[i] = float(_equity_decimal(engine, info, candle.close, precision))
        nxt = _next_event(engine, symbol, candles, i + 1, want, prices)
        if nxt > i + 1:  # no order trades in between: the equity moves with the close only
            equity[i + 1 : nxt] = _equity_between(engine, info, candles, i + 1, nxt)
        i = nxt
    final = _equity_decimal(engine, info, int(candles.close[-1]), precision)
    return StaticGridResult(
        spacing_ppm,
        levels,
        shape,
        precision.ticks_to_price(prices[0]),
        precision.ticks_to_price(prices[-1]),
        fills,
        cycles,
        fees,
        final,
        equity,
    )


def _buy_lots(per_level_qu: int, price: int, fee_ppm: int) -> int:
    return per_level_qu * PPM // (price * QU_PER_TICK_LOT * (PPM + fee_ppm))


def _next_event(
    engine: MatchingEngine,
    symbol: str,
    candles: CandleArrays,
    start: int,
    want: dict[int, tuple[Side, int]],
    prices: list[int],
) -> int:
    """Return the first candle from ``start`` on where something can happen (or the end).

    Either a candle trades through a resting order, or a level refused as post-only can rest at
    its close: a buy once the close is at or above it, a sell once the close is below it.
    """
    n = len(candles.ts_ms)
    max_buy, min_sell = engine.resting_bounds(symbol)
    buys = [prices[k] for k, (side, _) in want.items() if side is Side.BUY]
    sells = [prices[k] for k, (side, _) in want.items() if side is Side.SELL]
    while start < n:
        stop = min(n, start + _LOOKAHEAD)
        hit = np.zeros(stop - start, dtype=np.bool_)
        if max_buy is not None:
            hit |= candles.low[start:stop] < max_buy
        if min_sell is not None:
            hit |= candles.high[start:stop] > min_sell
        if buys:
            hit |= candles.close[start:stop] >= min(buys)
        if sells:
            hit |= candles.close[start:stop] < max(sells)
        found = np.flatnonzero(hit)
        if len(found):
            return start + int(found[0])
        start = stop
    return n


def _equity_decimal(engine: MatchingEngine, info: MarketInfo, close: int, precision: Precision) -> Decimal:
    base = engine.free(info.base) + engine.locked(info.base)
    quote = engine.free(info.quote) + engine.locked(info.quote)
    return quote + base * precision.ticks_to_price(close)


def _equity_between(
    engine: MatchingEngine, info: MarketInfo, candles: CandleArrays, lo: int, hi: int
) -> npt.NDArray[np.float64]:
    base = float(engine.free(info.base) + engine.locked(info.base))
    quote = float(engine.free(info.quote) + engine.locked(info.quote))
    return quote + base * candles.close[lo:hi].astype(np.float64) * float(info.tick_size)
