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
)
from nutcracker.core.model import Candle
from nutcracker.engine.ports import JournalStore
from nutcracker.engine.reports import PulseReport
from nutcracker.engine.runtime import Engine, SimulatedClock
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
    journal: JournalStore


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
    for symbol, trace in setup.traces.items():  # the journal knows each fill's cycle
        trace.bookings = {row.trade_id: row.cycle_id for row in setup.journal.fills(symbol)}
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
