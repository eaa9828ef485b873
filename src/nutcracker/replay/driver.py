"""Drive the live engine over SimExchange, one candle at a time, on a simulated clock.

Unlike the backtester (which calls the decision core directly and skips quiet candles), replay
runs the whole live path: the engine's workers hydrate from the simulated exchange, journal
write-ahead into SQLite, dispatch, and the monitor could purge; only the exchange and the clock
are simulated. The same per-pulse records as the backtester are kept, so a replay ends with the
backtest's outputs (summary, CSVs, HTML report).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from nutcracker.backtest.runner import (
    BacktestResult,
    KeltnerBands,
    SymbolTrace,
    market_info,
    starting_balances,
)
from nutcracker.config import NutcrackerConfig
from nutcracker.core.model import Candle
from nutcracker.engine.ports import Journal
from nutcracker.engine.runtime import Engine, EngineSettings, PulseReport, SimulatedClock
from nutcracker.engine.worker import WorkerSettings
from nutcracker.exchange.matching import MatchingEngine, OrderEvent
from nutcracker.exchange.simulated import SimExchange
from nutcracker.explain import cancel_text
from nutcracker.marketdata.candles import CandleArrays


@dataclass
class ReplaySetup:
    engine: Engine
    exchange: SimExchange
    matching: MatchingEngine
    clock: SimulatedClock
    traces: dict[str, SymbolTrace]
    warmup: int  # candles fed before the first pulse: the indicators' history
    starting: dict[str, Decimal]
    journal: Journal


def build_replay(
    config: NutcrackerConfig, data: Mapping[str, CandleArrays], journal: Journal, *, warmup: int = 0
) -> ReplaySetup:
    """Wire SimExchange, a simulated clock and the engine for ``config`` over ``data``.

    ``warmup`` candles are fed to the exchange before the first pulse. The default, 0, pulses from
    the first candle on, as the backtester does: both wait out the indicators' warm-up on the same
    candles, so a replay and a backtest of one file place their first orders on the same candle.
    """
    params = [s.to_params(config.engine.id) for s in config.symbols]
    starting = starting_balances(config)
    matching = MatchingEngine({p.market.symbol: market_info(p) for p in params}, starting)
    interval = next(iter(data.values())).interval_ms
    exchange = SimExchange(matching, interval_ms=interval)
    clock = SimulatedClock(int(next(iter(data.values())).ts_ms[0]))
    settings = EngineSettings(
        pulse_interval_s=interval / 1000,
        monitor_interval_s=None,  # replay pulses every candle; the pulse applies the purge thresholds itself
        cancel_on_shutdown=config.engine.cancel_on_shutdown,
        worker=WorkerSettings(candle_interval_ms=interval),
    )
    budgets = {asset: rail.max_quote for asset, rail in config.portfolio.items()}
    engine = Engine(params, exchange, journal, clock, settings=settings, portfolio_budgets=budgets or None)
    traces = {}
    for p in params:
        candles = data[p.market.symbol]
        traces[p.market.symbol] = SymbolTrace(
            p.market.symbol, p, candles, KeltnerBands.over(candles, p.keltner)
        )
    warmup = min(warmup, min(len(c.ts_ms) for c in data.values()))
    return ReplaySetup(engine, exchange, matching, clock, traces, warmup, starting, journal)


def _candle(c: CandleArrays, i: int) -> Candle:
    return Candle(
        int(c.ts_ms[i]), int(c.open[i]), int(c.high[i]), int(c.low[i]), int(c.close[i]), float(c.volume[i])
    )


async def run_replay(
    setup: ReplaySetup,
    data: Mapping[str, CandleArrays],
    *,
    speed: float,
    candles: int | None,
    on_report: Callable[[PulseReport], None],
    stop: asyncio.Event,
) -> BacktestResult:
    """Feed candles to the simulated exchange, pulse the engine after each, ``speed`` candles a second."""
    engine, exchange, clock = setup.engine, setup.exchange, setup.clock
    n = min(len(c.ts_ms) for c in data.values())
    last = n if candles is None else min(n, setup.warmup + candles)
    for i in range(setup.warmup):
        for symbol, c in data.items():
            exchange.advance(symbol, _candle(c, i))
    await engine.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    cancel_reasons: dict[str, str] = {}
    replayed = setup.warmup  # candles fed and pulsed so far: an interrupted run's outputs end here
    for pulses, i in enumerate(range(setup.warmup, last), start=1):
        if stop.is_set():
            break
        for symbol, c in data.items():
            exchange.advance(symbol, _candle(c, i))
        clock.advance_to(exchange.now_ms)
        for report in await engine.pulse_all():
            setup.traces[report.symbol].record(
                i,
                report.fills,
                [c.pnl_qu for c in report.closed_cycles],
                report.held_lots,
                report.committed_quote_qu,
                report.open_orders,
                report.reasons,
            )
            params = setup.traces[report.symbol].params
            for intent in report.intents:  # the exchange port carries no reason: orders.csv gets it here
                if intent.action == "cancel":
                    cancel_reasons[intent.client_order_id] = cancel_text(
                        intent.reason, report.reasons, params
                    )
            on_report(report)
        replayed = i + 1
        if speed > 0:  # pace for a person: the simulated clock runs `speed` candles per wall second
            delay = started + pulses / speed - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
    if stop.is_set():
        why = "interrupted (SIGINT/SIGTERM)"
    else:
        why = "end of the data" if last == n else f"--candles {candles} reached"
    await engine.shutdown(why)
    elapsed = loop.time() - started
    last = replayed  # Ctrl-C: candles, buy-and-hold and the report cover what was replayed only
    for symbol, trace in setup.traces.items():
        c = data[symbol]
        trace.candles = c.slice(0, last) if last < len(c.ts_ms) else c
        trace.bands = KeltnerBands.over(trace.candles, trace.params.keltner)
    result = BacktestResult(
        setup.matching, setup.traces, setup.starting, elapsed, (last - setup.warmup) * len(data)
    )
    _give_cancels_their_reasons(setup.matching, cancel_reasons, why)
    fills_of = getattr(setup.journal, "fills", None)  # the journal knows each fill's cycle
    for symbol, trace in setup.traces.items():
        if fills_of is not None:
            trace.bookings = {row.trade_id: row.cycle_id for row in fills_of(symbol)}
    return result


def _give_cancels_their_reasons(matching: MatchingEngine, reasons: Mapping[str, str], stop: str) -> None:
    """Set each ``cancelled`` event's reason: the strategy's, else the engine's stop (shutdown cancels)."""
    matching.events[:] = [
        OrderEvent(
            e.ts_ms,
            e.symbol,
            e.event,
            e.side,
            e.price,
            e.qty,
            e.client_order_id,
            reasons.get(e.client_order_id, f"engine stopped: {stop}"),
        )
        if e.event == "cancelled" and not e.reason
        else e
        for e in matching.events
    ]
