"""The hold region is sound: inside it, deciding again changes nothing."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from test_strategy_properties import USDT, World, _apply, _fill_some, candle_series, strategy_params

from factories import symbol_params
from nutcracker.core import indicators
from nutcracker.core.hold import Hold
from nutcracker.core.model import Book, Candle, Snapshot
from nutcracker.core.params import Spacing, SymbolParams
from nutcracker.core.strategy import Decision, StrategyState, decide, initial_state
from nutcracker.core.units import PPM


def market_values(
    params: SymbolParams, ind: indicators.IndicatorState, book: Book
) -> tuple[tuple[float, ...], tuple[bool, bool, bool, bool]]:
    """Return the hold variables and flags the way the backtester computes them."""
    grid = params.grid
    if grid.spacing is Spacing.BPS:
        step = grid.spacing_ppm / PPM
    else:
        step = grid.spacing_atr * ind.atr / ind.ema if ind.ready else math.nan
    values = (float(book.best_bid), float(book.best_ask), ind.ema, ind.lower, step, ind.atr_ppm)
    return values, (ind.ready, ind.above_run > 0, ind.buy_armed, ind.sell_armed)


def _contains(hold: Hold, values: tuple[float, ...], flags: tuple[bool, bool, bool, bool], ts: int) -> bool:
    return hold.contains(values, flags, ts)


@settings(max_examples=1000, deadline=None)
@given(
    params=strategy_params(),
    candles=candle_series(),
    moves=st.lists(
        st.tuples(st.integers(-40, 40), st.integers(1, 5), st.lists(st.integers(0, 50), max_size=2)),
        min_size=1,
        max_size=12,
    ),
)
def test_inside_the_hold_region_a_new_decision_changes_nothing(
    params: SymbolParams, candles: tuple[Candle, ...], moves: list[tuple[int, int, list[int]]]
) -> None:
    world = World({}, free_base=0, free_quote=10**6 * USDT)
    state: StrategyState = initial_state()
    last = candles[-1]
    book = Book(last.close, last.close + 1)
    snap = Snapshot("BTC/USDT", last.ts_ms + 60_000, candles, book, 0, world.free_quote, ())
    d: Decision = decide(snap, params, state, with_hold=True)
    _apply(world, d)
    held = 0
    for move, spread, choices in moves:
        # the market moves by one candle; some pulses bring fills (then the hold does not apply)
        prev = candles[-1]
        close = max(2, prev.close + move * max(1, prev.close // 10_000))
        candle = Candle(
            prev.ts_ms + 60_000, prev.close, max(prev.close, close), min(prev.close, close), close
        )
        candles = (*candles[1:], candle)
        book = Book(close, close + spread)
        fills = _fill_some(world, choices, candle.ts_ms + 59_999, params.market.maker_fee_ppm)
        snap = Snapshot(
            "BTC/USDT",
            candle.ts_ms + 60_000,
            candles,
            book,
            world.free_base,
            world.free_quote,
            tuple(world.orders.values()),
            fills,
        )
        ind = indicators.update(d.state.indicators, candles, params.keltner)
        values, flags = market_values(params, ind, book)
        again = decide(snap, params, d.state, with_hold=True)
        if not fills and d.hold is not None and _contains(d.hold, values, flags, snap.ts_ms):
            held += 1
            note(f"hold {d.hold} contained {values} {flags}")
            assert again.intents == ()
            assert replace(again.state, indicators=d.state.indicators) == d.state
        _apply(world, again)
        d = again
    event(f"pulses inside the hold: {min(held, 3)}+" if held else "no pulse inside the hold")


def test_a_resting_grid_holds_while_the_price_wanders_inside_its_levels() -> None:
    params = symbol_params()
    candles = tuple(Candle(i * 60_000, 10_000_000, 10_000_100, 9_999_900, 10_000_000) for i in range(40))
    d = decide(
        Snapshot("BTC/USDT", 40 * 60_000, candles, Book(10_000_000, 10_000_001), 0, 10**20, ()),
        params,
        initial_state(),
        with_hold=True,
    )
    assert d.hold is not None
    lo, hi = d.hold.lo[0], d.hold.hi[0]
    # the grid trails up once the bid passes one spacing (50 bps) above the anchor
    assert 10_049_999 <= hi <= 10_050_000
    assert lo <= 9_950_049  # the first level (one spacing below) must stay below the top of book
