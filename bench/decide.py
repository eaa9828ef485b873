"""Benchmark the decision function: one symbol, incremental indicators, 200 candles, 20+ open orders.

Run: ``.venv/bin/python bench/decide.py`` (or ``make bench``). Each timed call is one pulse that
brings one new closed candle. Prints median and p99 per call, the ratio to a baseline measured
in the same run (slicing the 200-candle window: the least any pulse does) and to the 50 µs target.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from nutcracker.config import load_config
from nutcracker.core import indicators
from nutcracker.core.model import Book, Candle, Fill, OpenOrder, PlaceLimit, Side, Snapshot
from nutcracker.core.params import SymbolParams
from nutcracker.core.strategy import StrategyState, decide, initial_state
from nutcracker.marketdata.candles import load_candles_csv, to_candles

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; a git worktree (../wt/NAME) names the set in NUTCRACKER_DATA_DIR
DATA = (
    Path(os.environ.get("NUTCRACKER_DATA_DIR") or ROOT.parent / "shared" / "data")
    / "binance_BTC-USDT_1m.csv.gz"
)
TARGET_US = 50.0
WINDOW = 200
CALLS = 4000


def _timed(fn: Callable[[int], object], calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        t0 = time.perf_counter_ns()
        fn(i)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return samples


def _snapshot(
    candles: tuple[Candle, ...], i: int, orders: tuple[OpenOrder, ...], fills: tuple[Fill, ...]
) -> Snapshot:
    window = candles[i - WINDOW + 1 : i + 1]
    close = window[-1].close
    return Snapshot(
        "BTC/USDT", window[-1].ts_ms + 60_000, window, Book(close, close + 1), 10**9, 10**20, orders, fills
    )


def _busy_state(
    candles: tuple[Candle, ...], params: SymbolParams
) -> tuple[int, StrategyState, tuple[OpenOrder, ...]]:
    """Walk the grid over real candles until it holds 5 lots and rests 20 orders or more.

    The grid keeps its 20 buys resting while it holds, and each lot its own exit: 25 orders with 5 lots.
    """
    state, orders = initial_state(), dict[str, OpenOrder]()
    for i in range(WINDOW, len(candles)):
        bar, fills = candles[i], []
        for order in list(orders.values()):
            if (order.side is Side.BUY and bar.low < order.price) or (
                order.side is Side.SELL and bar.high > order.price
            ):
                fee = order.price * order.qty * params.market.maker_fee_ppm
                fills.append(
                    Fill(
                        f"t{i}{order.client_order_id}",
                        order.client_order_id,
                        order.side,
                        order.price,
                        order.qty,
                        fee,
                        bar.ts_ms,
                    )
                )
                del orders[order.client_order_id]
        d = decide(_snapshot(candles, i, tuple(orders.values()), tuple(fills)), params, state)
        for intent in d.intents:
            if isinstance(intent, PlaceLimit):
                orders[intent.client_order_id] = OpenOrder(
                    intent.client_order_id, intent.side, intent.price, intent.qty
                )
            else:
                orders.pop(intent.client_order_id, None)
        state = d.state
        if len(orders) >= 20 and len(state.ledger.lots) >= 5:
            return i, state, tuple(orders.values())
    raise SystemExit("the walk never reached 20 resting orders")


def main() -> None:
    config = load_config(ROOT / "examples" / "grid-btc-usdt.toml")
    base = config.symbols[0].to_params(config.engine.id)
    params = replace(
        base,
        grid=replace(base.grid, levels=20, spacing_ppm=500),
        rails=replace(base.rails, max_base_lots=10**9, max_quote_qu=10**22),
    )
    candles = to_candles(load_candles_csv(DATA, params.market.precision), 0, 30_000)
    pos, state, orders = _busy_state(candles, params)
    # One state per call, each one candle behind its snapshot: every timed call applies one candle.
    states, ind = [], state.indicators
    for k in range(CALLS):
        states.append(replace(state, indicators=ind))
        ind = indicators.step(ind, candles[pos + 1 + k], params.keltner)
    snaps = [_snapshot(candles, pos + 1 + k, orders, ()) for k in range(CALLS)]
    idle_params = replace(params, gates=replace(params.gates, max_atr_ppm=1))  # too wild: no buys
    idle_snaps = [replace(s, open_orders=()) for s in snaps]
    idle_states = [replace(s, ledger=replace(s.ledger, lots=())) for s in states]

    rows = [
        (
            "baseline: slice the 200-candle window",
            _timed(lambda k: candles[pos + k - WINDOW : pos + k], CALLS),
        ),
        (
            f"decide: {len(orders)} open orders, 1 new candle",
            _timed(lambda k: decide(snaps[k], params, states[k]), CALLS),
        ),
        (
            "decide: idle (volatility gate), 1 new candle",
            _timed(lambda k: decide(idle_snaps[k], idle_params, idle_states[k]), CALLS),
        ),
        (
            "indicators.update: 1 new candle of 200",
            _timed(
                lambda k: indicators.update(states[k].indicators, snaps[k].candles, params.keltner), CALLS
            ),
        ),
    ]
    base_median = statistics.median(rows[0][1])
    print(f"{'case':46} {'median µs':>10} {'p99 µs':>9} {'x baseline':>11} {'x target':>9}")
    for name, samples in rows:
        median, p99 = statistics.median(samples), sorted(samples)[int(len(samples) * 0.99)]
        print(f"{name:46} {median:10.1f} {p99:9.1f} {median / base_median:11.1f} {median / TARGET_US:9.2f}")
    busy = statistics.median(rows[1][1])
    print(
        f"\ntarget median <= {TARGET_US:.0f} µs per decide call: {'met' if busy <= TARGET_US else 'NOT met'}"
        f" ({busy:.1f} µs; {len(orders)} open orders, {len(state.ledger.lots)} lots)"
    )


if __name__ == "__main__":
    main()
