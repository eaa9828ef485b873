"""The monitor: a separate, read-only watch that purges resting orders outside the thresholds.

Every ``interval_s`` it reads, for each pulsing symbol and without its lock, our open orders, the
top of book and the volatility (the worker's indicators with the candles closed since, folded on
a copy: nothing is saved). Reads never wait for a pulse and never place anything. Orders outside
the thresholds are then cancelled through ``SymbolWorker.purge``, which takes the symbol's lock
just for the cancels and journals them write-ahead like a pulse does.

The thresholds are ``decide``'s own (``core.strategy``), so the two never fight: a purged order
is one the next pulse would not place again.

- a buy priced below ``bid * (1e6 - keep_ppm) // 1e6``, ``keep_ppm`` being the purge distance plus a
  quarter of it (``core.strategy.purge_keep_ppm``): decide places no level beyond ``purge_ppm`` and
  keeps a resting one up to ``keep_ppm``;
- a sell priced above ``ask * (1e6 + purge_ppm) // 1e6`` (decide holds such an exit back);
- every buy while the ATR% is above the volatility backstop ``max_atr_ppm`` (decide wants none).

Paused and killed symbols are left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from nutcracker.core import indicators
from nutcracker.core.model import Book, Candle, OpenOrder, Side
from nutcracker.core.params import GateParams
from nutcracker.core.strategy import purge_keep_ppm
from nutcracker.core.units import PPM
from nutcracker.engine.worker import LogLine, SymbolWorker
from nutcracker.errors import ExchangeError
from nutcracker.explain import render_reason

__all__ = ["MarketReader", "Monitor", "PurgeReport", "purge_reasons"]

logger = logging.getLogger("nutcracker.engine")


class MarketReader(Protocol):
    """The reads the monitor makes (an ``Exchange`` fits; pass a separate one to segregate reads)."""

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]: ...

    async def fetch_book(self, symbol: str) -> Book: ...

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]: ...


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """One check of one symbol: how many of our orders were read and which were purged, and why."""

    symbol: str
    checked: int
    purged: tuple[tuple[str, str], ...]  # (client_order_id, reason) of the orders cancelled
    atr_ppm: float
    error: str = ""  # why the check could not complete (a read failed)


def purge_reasons(
    orders: Sequence[OpenOrder], book: Book, atr_ppm: float, gates: GateParams
) -> list[tuple[str, str]]:
    """Return (client_order_id, reason) of the orders outside the thresholds, with decide's bounds."""
    out: list[tuple[str, str]] = []
    purge = gates.purge_ppm
    too_wild = bool(gates.max_atr_ppm) and atr_ppm > gates.max_atr_ppm
    buy_line = book.best_bid * (PPM - purge_keep_ppm(purge)) // PPM if purge else 0
    sell_line = book.best_ask * (PPM + purge) // PPM if purge else 0
    for order in orders:
        if order.side is Side.BUY:
            if too_wild:
                out.append(
                    (
                        order.client_order_id,
                        f"volatility {atr_ppm:.0f} ppm above the backstop {gates.max_atr_ppm} ppm",
                    )
                )
            elif purge and order.price < buy_line:
                out.append(
                    (
                        order.client_order_id,
                        f"buy at {order.price} beyond the purge line {buy_line} (best bid {book.best_bid})",
                    )
                )
        elif purge and order.price > sell_line:
            out.append(
                (
                    order.client_order_id,
                    f"sell at {order.price} beyond the purge line {sell_line} (best ask {book.best_ask})",
                )
            )
    return out


class Monitor:
    """Read open orders and volatility per symbol, segregated from placements; purge what is outside."""

    def __init__(
        self,
        workers: Sequence[SymbolWorker] | Callable[[], Sequence[SymbolWorker]],
        reader: MarketReader,
        *,
        interval_s: float = 5.0,
        candles_page_limit: int = 1000,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._workers = workers
        self._reader = reader
        self.interval_s = interval_s
        self._page = candles_page_limit

    def _current_workers(self) -> Sequence[SymbolWorker]:
        return self._workers() if callable(self._workers) else self._workers

    async def sweep(self) -> tuple[PurgeReport, ...]:
        """Check every pulsing symbol once, concurrently (a slow symbol delays no other)."""
        workers = [w for w in self._current_workers() if w.active]
        return tuple(await asyncio.gather(*(self.check(w) for w in workers)))

    async def check(self, worker: SymbolWorker) -> PurgeReport:
        """Read one symbol's orders, book and volatility (no lock), then purge under its lock."""
        symbol, params = worker.symbol, worker.params
        gates = params.gates
        if not (gates.purge_ppm or gates.max_atr_ppm):
            return PurgeReport(symbol, 0, (), float("nan"))
        prefix = params.order_id_prefix + "-"
        try:
            orders = [
                o
                for o in await self._reader.fetch_open_orders(symbol)
                if o.client_order_id.startswith(prefix)
            ]
            if not orders:
                return PurgeReport(symbol, 0, (), float("nan"))
            book = await self._reader.fetch_book(symbol)
            atr_ppm = await self._volatility(worker)
        except ExchangeError as e:
            logger.info(LogLine("monitor_read_failed", symbol=symbol, error=e))
            return PurgeReport(symbol, 0, (), float("nan"), str(e) or type(e).__name__)
        # journaled and logged in the user's units (prices, percent, the config's names)
        wanted = [
            (cid, render_reason(why, worker.params))
            for cid, why in purge_reasons(orders, book, atr_ppm, gates)
        ]
        if not wanted:
            return PurgeReport(symbol, len(orders), (), atr_ppm)
        gone = set(await worker.purge(wanted))
        purged = tuple((cid, why) for cid, why in wanted if cid in gone)
        logger.info(LogLine("purge", symbol=symbol, orders=len(purged), asked=len(wanted)))
        return PurgeReport(symbol, len(orders), purged, atr_ppm)

    async def _volatility(self, worker: SymbolWorker) -> float:
        """Return the ATR% after the worker's indicators and the candles closed since (a copy)."""
        state = worker.state.indicators
        if state.last_ts_ms < 0:
            return float("nan")
        candles: list[Candle] = []
        since = state.last_ts_ms + 1
        while True:
            batch = await self._reader.fetch_candles(worker.symbol, since, self._page)
            fresh = [c for c in batch if c.ts_ms >= since]
            candles.extend(fresh)
            if len(batch) < self._page or not fresh:
                break
            since = fresh[-1].ts_ms + 1
        return indicators.update(state, candles, worker.params.keltner).atr_ppm

    async def run(self, stop: asyncio.Event, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Sweep every ``interval_s`` until ``stop`` is set (``sleep`` waits, returning early on stop)."""
        while not stop.is_set():
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a monitor bug must not stop the engine; the pulses still decide
                logger.exception(LogLine("monitor_error"))
            await sleep(self.interval_s)
