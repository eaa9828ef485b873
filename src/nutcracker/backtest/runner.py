"""The backtester: the live decision code over the matching engine, on historical candles.

Each pulse is the live engine's: hydrate a snapshot (book, free balances, our open orders, new
fills) → ``core.strategy.decide`` → cancels, then post-only placements on ``MatchingEngine``
(the same matching engine the simulated exchange serves). Candles are the clock: a pulse
happens at a candle's close, after the engine matched the candle against the resting orders.

Trade prints (``prints``, the ``*_trades*`` files) replace the candle rule on every candle they
cover from open to close: their prints are fed in order to the matching engine's queue-aware
``on_trade``. Top-of-book updates (``quotes``, the ``*_bbo*`` files) give the pulses they cover the
real book, whose sizes are the queue ahead of an order placed at the best price. Without them the
queues are unknown: risk-averse, a print fills only the orders it trades through, none at its own
price (``on_trade(at_price=False)``). Covered candles always pulse.

Speed comes from not pulsing where nothing can change: the decision returns its hold region
(``core.hold``) and ``scan.next_pulse`` jumps, in compiled code, to the next candle where a
resting order can fill, the market leaves the region, a cooldown ends or data resumes after a
gap. ``skip=False`` pulses on every candle; the parity tests prove both give the same fills and
orders. The indicator state of each pulse comes from the batch indicators, which are
bit-identical to the incremental ones the live engine folds (tested).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from nutcracker.backtest.scan import next_pulse
from nutcracker.config import NutcrackerConfig, starting_balances
from nutcracker.core import indicators
from nutcracker.core.hold import Hold
from nutcracker.core.indicators import IndicatorSeries
from nutcracker.core.model import Book, CancelOrder, Candle, Fill, MarketInfo, OpenOrder, Side, Snapshot
from nutcracker.core.params import KeltnerParams, Spacing, SymbolParams
from nutcracker.core.strategy import Decision, StrategyState, decide, initial_state
from nutcracker.core.units import BU_PER_LOT, PPM, notional_qu
from nutcracker.errors import OrderRejectedError
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.explain import cancel_text
from nutcracker.marketdata.candles import BboArrays, CandleArrays, TradeArrays

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class KeltnerBands:
    """The Keltner bands per candle, for the report: copies, so the run's indicator series can go."""

    ema: F64
    lower: F64
    upper: F64

    @classmethod
    def of(cls, series: IndicatorSeries) -> KeltnerBands:
        return cls(series.ema.copy(), series.lower.copy(), series.upper.copy())

    @classmethod
    def over(cls, candles: CandleArrays, keltner: KeltnerParams) -> KeltnerBands:
        return cls.of(_indicator_series(candles, keltner))


def _indicator_series(candles: CandleArrays, keltner: KeltnerParams) -> IndicatorSeries:
    high, low, close = (a.astype(np.float64) for a in (candles.high, candles.low, candles.close))
    return indicators.batch(candles.ts_ms, high, low, close, keltner)


@dataclass
class SymbolTrace:
    """What one symbol did: the step functions the report and summary are computed from."""

    symbol: str
    params: SymbolParams
    candles: CandleArrays
    bands: KeltnerBands
    pulse_index: list[int] = field(default_factory=list)  # candle index of each pulse
    cash_qu: list[int] = field(default_factory=list)  # cumulative quote flow of our fills after the pulse
    held_lots: list[int] = field(default_factory=list)
    committed_qu: list[int] = field(default_factory=list)  # held cost + open buy notional
    max_buy: list[int] = field(default_factory=list)  # highest resting buy after the pulse (0: none)
    min_buy: list[int] = field(default_factory=list)  # deepest resting buy (0: none)
    min_sell: list[int] = field(default_factory=list)
    cycle_pnl_qu: list[int] = field(default_factory=list)
    rail_violations: int = 0
    peak_held_bu: int = 0  # the most base our fills left the account at any moment, base units
    inventory_bu: int = 0  # base our fills left the account: bought less base commissions, less sold
    pulses: int = 0
    cycles_closed: int = 0
    realized_pnl_qu: int = 0
    fees_qu: int = 0
    bookings: dict[str, int] = field(default_factory=dict)  # trade id -> cycle id
    final_state: StrategyState | None = None
    # the pulses whose reasons or position shape changed: (candle, reasons, held, committed, orders),
    # what decisions.csv explains in the user's units (``nutcracker.explain``)
    moments: list[tuple[int, tuple[str, ...], int, int, tuple[OpenOrder, ...]]] = field(default_factory=list)
    moment_key: tuple[tuple[str, ...], int, int, int] = ((), -1, -1, -1)

    def record(
        self,
        i: int,
        fills: Sequence[Fill],
        closed_pnl_qu: Sequence[int],
        held_lots: int,
        committed_qu: int,
        orders: Sequence[OpenOrder],
        reasons: tuple[str, ...] = (),
    ) -> None:
        """Add one pulse at candle ``i``: its fills and closed cycles, then the position it left."""
        held = self.inventory_bu
        cash = self.cash_qu[-1] if self.cash_qu else 0
        for fill in fills:  # the inventory peaks between fills of one candle, not only after them
            if fill.side is Side.BUY:
                held += fill.qty * BU_PER_LOT - fill.fee_base
                self.peak_held_bu = max(self.peak_held_bu, held)
            else:
                held -= fill.qty * BU_PER_LOT
            notional = notional_qu(fill.price, fill.qty)
            cash += -notional - fill.fee if fill.side is Side.BUY else notional - fill.fee
            self.fees_qu += fill.fee_value
        for pnl in closed_pnl_qu:
            self.cycle_pnl_qu.append(pnl)
            self.cycles_closed += 1
            self.realized_pnl_qu += pnl
        buying = max_buy = min_buy = min_sell = 0  # buying: the lots the open buys may add
        for o in orders:  # one pass: this runs on every pulse
            if o.side is Side.BUY:
                buying += o.remaining
                max_buy = max(max_buy, o.price)
                min_buy = o.price if min_buy == 0 else min(min_buy, o.price)
            else:
                min_sell = o.price if min_sell == 0 else min(min_sell, o.price)
        rails = self.params.rails
        if held_lots + buying > rails.max_base_lots or committed_qu > rails.max_quote_qu:
            self.rail_violations += 1
        self.inventory_bu = held
        self.pulses += 1
        self.pulse_index.append(i)
        self.cash_qu.append(cash)
        self.held_lots.append(held_lots)
        self.committed_qu.append(committed_qu)
        self.max_buy.append(max_buy)
        self.min_buy.append(min_buy)
        self.min_sell.append(min_sell)
        sells = len(orders) - sum(1 for o in orders if o.side is Side.BUY)
        key = (reasons, held_lots, len(orders) - sells, sells)
        if key != self.moment_key:
            self.moment_key = key
            self.moments.append((i, reasons, held_lots, committed_qu, tuple(orders)))


@dataclass
class BacktestResult:
    engine: MatchingEngine
    traces: dict[str, SymbolTrace]
    starting_balances: dict[str, Decimal]
    elapsed_s: float
    candles: int
    decisions: list[tuple[str, int, Decision]] = field(default_factory=list)  # only with keep_decisions


@dataclass
class _Run:
    """Mutable per-symbol state while the backtest runs."""

    trace: SymbolTrace
    series: IndicatorSeries  # the indicator state after each candle: what each pulse starts from
    step: F64  # hold variables per candle besides the series' EMA and lower band: grid spacing,
    atr_ppm: F64  # and volatility (bid and ask come from the close)
    flags: npt.NDArray[np.uint8]  # per candle, bit f: the hold's flag f
    pulse_ts: npt.NDArray[np.int64]  # candle close times: a pulse at candle i sees this exchange time
    forced: npt.NDArray[np.bool_]
    state: StrategyState
    prints: _Prints | None = None
    quotes: _Quotes | None = None
    hold: Hold | None = None


@dataclass
class _Prints:
    """The trade prints of one symbol and, per candle, the ones inside it."""

    trades: TradeArrays
    covered: npt.NDArray[np.bool_]  # the prints cover the candle from its open to its close
    first: npt.NDArray[np.int64]  # index of the candle's first print
    stop: npt.NDArray[np.int64]  # one past its last

    @classmethod
    def over(cls, trades: TradeArrays, candles: CandleArrays) -> _Prints:
        ts = trades.ts_ms
        closes = candles.ts_ms + candles.interval_ms
        covered = np.zeros(len(candles.ts_ms), dtype=np.bool_)
        if len(ts):
            covered = (candles.ts_ms >= ts[0]) & (closes - 1 <= ts[-1])
        first = np.searchsorted(ts, candles.ts_ms, side="left").astype(np.int64)
        stop = np.searchsorted(ts, closes, side="left").astype(np.int64)
        return cls(trades, covered, first, stop)


@dataclass
class _Quotes:
    """The top-of-book updates of one symbol and, per pulse, the last one it sees."""

    bbo: BboArrays
    row: npt.NDArray[np.int64]  # per candle: the update in force at its pulse, -1 outside the file

    @classmethod
    def over(cls, bbo: BboArrays, pulse_ts: npt.NDArray[np.int64]) -> _Quotes:
        row = np.searchsorted(bbo.ts_ms, pulse_ts, side="right").astype(np.int64) - 1
        if len(bbo.ts_ms):
            row[pulse_ts > bbo.ts_ms[-1]] = -1  # after the recording ends the book is unknown
        return cls(bbo, row)

    def book_at(self, i: int) -> Book | None:
        r = int(self.row[i])
        if r < 0:
            return None
        q = self.bbo
        return Book(int(q.bid[r]), int(q.ask[r]), int(q.bid_lots[r]), int(q.ask_lots[r]))


def market_info(params: SymbolParams) -> MarketInfo:
    market = params.market
    precision = market.precision
    return MarketInfo(
        market.symbol,
        market.base,
        market.quote,
        precision.tick,
        precision.lot,
        precision.qu_to_quote(market.min_notional_qu),
        Decimal(market.maker_fee_ppm) / PPM,
    )


def run_backtest(
    config: NutcrackerConfig,
    data: Mapping[str, CandleArrays],
    *,
    skip: bool = True,
    keep_decisions: bool = False,
    progress: Callable[[int], None] | None = None,
    prints: Mapping[str, TradeArrays] | None = None,
    quotes: Mapping[str, BboArrays] | None = None,
) -> BacktestResult:
    """Run every symbol of ``config`` over its candles; ``data`` maps symbol -> candles.

    ``prints`` and ``quotes`` map symbols to their trade prints and top-of-book updates, if any.
    """
    params = {s.market.symbol: s.to_params(config.engine.id) for s in config.symbols}
    missing = [symbol for symbol in params if symbol not in data]
    if missing:
        raise ValueError(f"no candles for {', '.join(missing)}: give a --data CSV for each symbol")
    prints, quotes = prints or {}, quotes or {}
    unknown = sorted(set(prints) - set(params)) + sorted(set(quotes) - set(params))
    if unknown:
        raise ValueError(f"trade prints or quotes for {', '.join(unknown)}, which the config does not trade")
    balances = starting_balances(config)
    engine = MatchingEngine({s: market_info(p) for s, p in params.items()}, balances)
    portfolio = {asset: rail.max_quote for asset, rail in config.portfolio.items()}
    runs = {
        symbol: _prepare(p, data[symbol], prints.get(symbol), quotes.get(symbol))
        for symbol, p in params.items()
    }
    result = BacktestResult(
        engine, {s: r.trace for s, r in runs.items()}, balances, 0.0, sum(len(d.ts_ms) for d in data.values())
    )
    started = time.perf_counter()
    heap = [
        (int(r.pulse_ts[0]), order, symbol, 0)
        for order, (symbol, r) in enumerate(runs.items())
        if len(r.pulse_ts)
    ]
    heapq.heapify(heap)
    done = 0
    while heap:
        _, order, symbol, i = heapq.heappop(heap)
        run = runs[symbol]
        allowance = _allowance(portfolio, runs, run, engine)
        decision = _pulse(engine, run, i, allowance, with_hold=skip)
        if keep_decisions:
            result.decisions.append((symbol, i, decision))
        nxt = i + 1 if not skip or run.hold is None else _next(run, engine, i + 1)
        if progress is not None and nxt - done > 1000:
            progress(nxt)
            done = nxt
        if nxt < len(run.pulse_ts):
            heapq.heappush(heap, (int(run.pulse_ts[nxt]), order, symbol, nxt))
    result.elapsed_s = time.perf_counter() - started
    for run in runs.values():
        run.trace.final_state = run.state
    return result


def _prepare(
    params: SymbolParams, candles: CandleArrays, trades: TradeArrays | None, bbo: BboArrays | None
) -> _Run:
    series = _indicator_series(candles, params.keltner)
    n = len(candles.ts_ms)
    grid = params.grid
    if grid.spacing is Spacing.BPS:
        step = np.full(n, grid.spacing_ppm / PPM)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            step = grid.spacing_atr * series.atr / series.ema  # the same operations as decide
        step[~series.ready] = np.nan
    flags = np.zeros(n, dtype=np.uint8)  # in the order of ``Hold.flags``
    for f, flag in enumerate((series.ready, series.above_run > 0, series.buy_armed, series.sell_armed)):
        flags |= flag.astype(np.uint8) << f
    forced = np.zeros(n, dtype=np.bool_)
    if n > 1:
        forced[1:] = (
            np.diff(candles.ts_ms) > candles.interval_ms
        )  # resuming after a gap is like a data-stall's end
    pulse_ts = candles.ts_ms + (candles.interval_ms - 1)  # a pulse sees the exchange at its candle's close
    prints = None if trades is None else _Prints.over(trades, candles)
    quotes = None if bbo is None else _Quotes.over(bbo, pulse_ts)
    if prints is not None:
        forced |= prints.covered  # a print at an order's price may fill it: the scan cannot tell
    if quotes is not None:
        forced |= quotes.row >= 0  # the book is not the close's: the hold's bid and ask do not apply
    trace = SymbolTrace(params.market.symbol, params, candles, KeltnerBands.of(series))
    return _Run(trace, series, step, series.atr_ppm, flags, pulse_ts, forced, initial_state(), prints, quotes)


def _allowance(
    portfolio: Mapping[str, Decimal], runs: Mapping[str, _Run], run: _Run, engine: MatchingEngine
) -> int | None:
    """Return the quote units this symbol may still commit under its quote asset's portfolio rail."""
    params = run.trace.params
    rail = portfolio.get(params.market.quote)
    if rail is None:
        return None
    committed = Decimal(0)
    for other in runs.values():
        p = other.trace.params
        if p.market.quote == params.market.quote and other.trace.committed_qu:
            committed += p.market.precision.qu_to_quote(other.trace.committed_qu[-1])
    return max(0, params.market.precision.quote_to_qu(rail - committed))


def _pulse(engine: MatchingEngine, run: _Run, i: int, allowance: int | None, *, with_hold: bool) -> Decision:
    trace, params = run.trace, run.trace.params
    symbol = params.market.symbol
    c = trace.candles
    candle = Candle(
        int(c.ts_ms[i]), int(c.open[i]), int(c.high[i]), int(c.low[i]), int(c.close[i]), float(c.volume[i])
    )
    prints, quotes = run.prints, run.quotes
    recorded = None if quotes is None else quotes.book_at(i)
    book = Book(candle.close, candle.close + 1) if recorded is None else recorded
    if prints is not None and prints.covered[i]:
        # queues are known when the orders resting now were placed on a book with sizes
        queues_known = quotes is not None and i > 0 and int(quotes.row[i - 1]) >= 0
        fills = _fill_from_prints(
            engine, symbol, prints.trades, int(prints.first[i]), int(prints.stop[i]), queues_known
        )
        engine.set_book(symbol, book)  # prints move no book
    else:
        fills = engine.on_candle(symbol, candle, c.interval_ms)  # sets the close's book
        if recorded is not None:
            engine.set_book(symbol, recorded)
    ts = int(run.pulse_ts[i])
    state = run.state.with_indicators(indicators.state_at(run.series, i))
    free_base, free_quote = engine.free_units(symbol)
    snap = Snapshot(
        symbol,
        ts,
        (candle,),
        book,
        free_base,
        free_quote,
        engine.open_orders(symbol),
        tuple(fills),
        allowance,
    )
    decision = decide(snap, params, state, with_hold=with_hold)
    run.state = decision.state
    rejected = False
    for intent in decision.intents:
        if isinstance(intent, CancelOrder):
            engine.cancel(
                symbol, intent.client_order_id, ts, cancel_text(intent.reason, decision.reasons, params)
            )
        else:
            try:
                engine.place(symbol, intent, ts)
            except OrderRejectedError:
                rejected = True  # recorded in the engine's events; the next candle re-decides
    run.hold = None if rejected else decision.hold
    _record(run, engine, i, fills, decision)
    return decision


def _fill_from_prints(
    engine: MatchingEngine, symbol: str, trades: TradeArrays, first: int, stop: int, queues_known: bool
) -> list[Fill]:
    fills: list[Fill] = []
    rows = zip(
        trades.ts_ms[first:stop].tolist(),
        trades.price[first:stop].tolist(),
        trades.qty[first:stop].tolist(),
        trades.taker_is_buy[first:stop].tolist(),
        strict=True,
    )
    for ts, price, qty, taker_buys in rows:
        side = Side.BUY if taker_buys else Side.SELL
        fills.extend(engine.on_trade(symbol, ts, price, qty, side, at_price=queues_known))
    return fills


def _record(run: _Run, engine: MatchingEngine, i: int, fills: list[Fill], decision: Decision) -> None:
    trace = run.trace
    for booking in decision.bookings:
        trace.bookings[booking.trade_id] = booking.cycle_id
    ledger = decision.state.ledger
    orders = engine.open_orders(trace.symbol)
    committed = ledger.held_cost
    for o in orders:
        if o.side is Side.BUY:
            committed += notional_qu(o.price, o.remaining)
    closed = [c.pnl for c in decision.closed_cycles]
    trace.record(i, fills, closed, ledger.held, committed, orders, decision.reasons)


def _next(run: _Run, engine: MatchingEngine, start: int) -> int:
    hold = run.hold
    if hold is None or start >= len(run.pulse_ts):
        return start
    max_buy, min_sell = engine.resting_bounds(run.trace.params.market.symbol)
    mask = values = 0
    for f, want in enumerate(hold.flags):
        if want is not None:
            mask |= 1 << f
            values |= int(want) << f
    c = run.trace.candles
    return int(
        next_pulse(
            start,
            c.low,
            c.high,
            c.close,
            run.pulse_ts,
            run.series.ema,
            run.series.lower,
            run.step,
            run.atr_ppm,
            run.flags,
            run.forced,
            np.array(hold.lo + hold.hi, dtype=np.float64),
            mask,
            values,
            hold.until_ts_ms,
            -1 if max_buy is None else max_buy,
            -1 if min_sell is None else min_sell,
        )
    )
