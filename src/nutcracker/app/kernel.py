"""The composition root: every mode built from (mode, config, store), in one place.

``backtest`` runs the decision core over candles (no engine, no store); ``replay`` runs the
live engine on the simulated exchange and clock, journaling into the store; ``paper`` and
``live`` run it on the wall clock through ccxt (``app.connected``). Later processes (a worker
per symbol group, the API) are built here too. The CLI only parses, calls these and prints;
concrete adapters are picked here and in ``app.connected``, nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path

from nutcracker.backtest.runner import BacktestResult, KeltnerBands, SymbolTrace, market_info, run_backtest
from nutcracker.config import NutcrackerConfig, starting_balances
from nutcracker.core.params import SymbolParams
from nutcracker.engine.ports import Exchange, Journal, JournalStore
from nutcracker.engine.reports import PulseReport
from nutcracker.engine.runtime import Engine, EngineSettings, RunClock, SimulatedClock
from nutcracker.engine.worker import WorkerSettings
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.exchange.simulated import SimExchange
from nutcracker.marketdata.candles import BboArrays, CandleArrays, TradeArrays
from nutcracker.replay.driver import ReplaySetup, run_replay
from nutcracker.store.sqlite import SqliteJournal


class Mode(StrEnum):
    BACKTEST = "backtest"  # the decision core over candles, fills simulated, nothing journaled
    REPLAY = "replay"  # the live engine over candles on the simulated exchange and clock
    PAPER = "paper"  # the live engine on the wall clock, real market data, fills simulated locally
    LIVE = "live"  # the live engine on the wall clock, orders on the exchange


CONNECTED_MODES = (Mode.PAPER, Mode.LIVE)


def symbol_params(config: NutcrackerConfig) -> list[SymbolParams]:
    """Return the core parameters of every configured symbol, in file order."""
    return [s.to_params(config.engine.id) for s in config.symbols]


def build_engine(
    config: NutcrackerConfig,
    params: Sequence[SymbolParams],
    exchange: Exchange,
    journal: Journal,
    clock: RunClock,
    settings: EngineSettings,
) -> Engine:
    """Return the engine every engine mode runs: the symbols, their exchange, store and clock."""
    budgets = {asset: rail.max_quote for asset, rail in config.portfolio.items()}
    return Engine(params, exchange, journal, clock, settings=settings, portfolio_budgets=budgets or None)


# --- backtest ---------------------------------------------------------------------------------------


def backtest(
    config: NutcrackerConfig,
    candles: Mapping[str, CandleArrays],
    *,
    skip: bool = True,
    progress: Callable[[int], None] | None = None,
    prints: Mapping[str, TradeArrays] | None = None,
    quotes: Mapping[str, BboArrays] | None = None,
) -> BacktestResult:
    """Run the backtest mode: the decision core over ``candles``; no engine and no store."""
    return run_backtest(config, candles, skip=skip, progress=progress, prints=prints, quotes=quotes)


# --- replay -----------------------------------------------------------------------------------------


def build_replay(
    config: NutcrackerConfig,
    data: Mapping[str, CandleArrays],
    journal: JournalStore,
    *,
    warmup: int = 0,
    wrap_exchange: Callable[[SimExchange], Exchange] | None = None,
) -> ReplaySetup:
    """Wire SimExchange, a simulated clock and the engine for ``config`` over ``data``.

    ``warmup`` candles are fed to the exchange before the first pulse. The default, 0, pulses from
    the first candle on, as the backtester does: both wait out the indicators' warm-up on the same
    candles, so a replay and a backtest of one file place their first orders on the same candle.
    ``wrap_exchange`` puts an adapter between the engine and the exchange (the API's dispatch timer).
    """
    params = symbol_params(config)
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
    port: Exchange = wrap_exchange(exchange) if wrap_exchange is not None else exchange
    engine = build_engine(config, params, port, journal, clock, settings)
    traces = {}
    for p in params:
        candles = data[p.market.symbol]
        traces[p.market.symbol] = SymbolTrace(
            p.market.symbol, p, candles, KeltnerBands.over(candles, p.keltner)
        )
    warmup = min(warmup, min(len(c.ts_ms) for c in data.values()))
    return ReplaySetup(engine, exchange, matching, clock, traces, warmup, starting, journal)


async def replay(
    config: NutcrackerConfig,
    data: Mapping[str, CandleArrays],
    store: Path,
    *,
    speed: float,
    candles: int | None,
    stop: asyncio.Event,
    on_report: Callable[[PulseReport], None],
) -> BacktestResult:
    """Run the replay mode over ``data``, journaling into the SQLite file ``store``; close it after."""
    store.parent.mkdir(parents=True, exist_ok=True)
    journal = SqliteJournal(store)
    try:
        setup = build_replay(config, data, journal)
        return await run_replay(setup, data, speed=speed, candles=candles, stop=stop, on_report=on_report)
    finally:
        journal.close()


# --- paper and live ---------------------------------------------------------------------------------


def run_connected(config: NutcrackerConfig, mode: Mode, store: Path, **options: object) -> None:
    """Run the paper or live mode until a stop, journaling into ``store`` (see ``app.connected``)."""
    from nutcracker.app.connected import run_blocking  # ccxt is large: loaded only for these modes

    run_blocking(config, mode=str(mode), journal_path=store, **options)
