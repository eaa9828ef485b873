"""SimExchange: the engine's Exchange port over a ``MatchingEngine``, for backtest, replay and paper.

The driver (backtester, replay loop) calls ``advance(symbol, candle)`` for each closed candle: the
engine matches it, the candle joins the symbol's history and the simulated clock moves to the
candle's close time. The clock is only what ``advance`` sets; nothing here reads a real clock.

Faults are off by default. ``Faults`` draws them from its own ``random.Random(seed)`` (the sim is
not the decision core), or takes them one by one from ``fail_next`` for deterministic tests:

- ``timeout``: the call raises ``ExchangeUnavailableError`` before doing anything;
- ``drop_after_accept`` (``place`` only): the order is placed (or rejected) as usual, then the
  answer is lost: ``AmbiguousOrderError``; ``fetch_order`` tells what happened;
- ``latency_ms``: every call first sleeps that long.
"""

from __future__ import annotations

import asyncio
import random
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit
from nutcracker.errors import AmbiguousOrderError, ExchangeUnavailableError, OrderRejectedError
from nutcracker.exchange.matching import MatchingEngine

FaultKind = Literal["timeout", "drop_after_accept"]

METHODS = frozenset(
    {
        "market",
        "server_time_ms",
        "fetch_candles",
        "fetch_book",
        "fetch_balances",
        "fetch_open_orders",
        "fetch_fills",
        "fetch_order",
        "fetch_orders",
        "place",
        "cancel",
    }
)
"""The port methods faults can hit."""


@dataclass(slots=True)
class Faults:
    """Fault injection for a SimExchange: seeded random faults plus queued one-shot ones."""

    seed: int = 0
    timeout: float = 0.0  # probability per call
    drop_after_accept: float = 0.0  # probability per place
    latency_ms: int = 0  # added to every call
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _queued: dict[str, deque[FaultKind]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, p in (("timeout", self.timeout), ("drop_after_accept", self.drop_after_accept)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"Faults.{name} is a probability in [0, 1], got {p}")
        if self.latency_ms < 0:
            raise ValueError(f"Faults.latency_ms must be >= 0, got {self.latency_ms}")
        self._rng = random.Random(self.seed)
        self._queued = {}

    def fail_next(self, method: str, kind: FaultKind) -> None:
        """Make the next call of ``method`` fail with ``kind`` (queued: one call per request)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; one of {sorted(METHODS)}")
        if kind not in ("timeout", "drop_after_accept"):
            raise ValueError(f"unknown fault {kind!r}; 'timeout' or 'drop_after_accept'")
        if kind == "drop_after_accept" and method != "place":
            raise ValueError("drop_after_accept applies to 'place' only")
        self._queued.setdefault(method, deque()).append(kind)

    def draw(self, method: str) -> FaultKind | None:
        """Return the fault hitting this call of ``method``, if any."""
        queued = self._queued.get(method)
        if queued:
            return queued.popleft()
        # Draw only for the faults switched on, so that a sim without faults consumes no randomness.
        if self.timeout and self._rng.random() < self.timeout:
            return "timeout"
        if method == "place" and self.drop_after_accept and self._rng.random() < self.drop_after_accept:
            return "drop_after_accept"
        return None


def _candle_ts(candle: Candle) -> int:
    return candle.ts_ms


class SimExchange:
    """Serve the Exchange port from a MatchingEngine, a candle history and a simulated clock."""

    __slots__ = ("_candles", "_engine", "_interval_ms", "_max_history", "_now_ms", "faults")

    def __init__(
        self,
        engine: MatchingEngine,
        *,
        interval_ms: int = 60_000,
        faults: Faults | None = None,
        now_ms: int = 0,
        max_history: int | None = None,
    ) -> None:
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        if max_history is not None and max_history <= 0:
            raise ValueError(f"max_history must be positive or None, got {max_history}")
        self._engine = engine
        self._interval_ms = interval_ms
        self._now_ms = now_ms
        self._max_history = max_history  # keep at least this many candles per symbol; None: all
        self._candles: dict[str, list[Candle]] = {}
        self.faults = faults if faults is not None else Faults()

    @property
    def engine(self) -> MatchingEngine:
        return self._engine

    @property
    def now_ms(self) -> int:
        """Return the simulated clock: the close time of the latest candle advanced."""
        return self._now_ms

    def advance(self, symbol: str, candle: Candle) -> list[Fill]:
        """Match ``candle``, add it to the history and move the clock to its close; return the fills."""
        history = self._candles.get(symbol)
        if history is None:
            self._engine.market(symbol)  # refuse an unknown symbol before keeping anything
            history = self._candles[symbol] = []
        elif candle.ts_ms <= history[-1].ts_ms:
            raise ValueError(f"{symbol}: candle at {candle.ts_ms} does not follow {history[-1].ts_ms}")
        fills = self._engine.on_candle(symbol, candle, self._interval_ms)
        history.append(candle)
        limit = self._max_history
        if limit is not None and len(history) > 2 * limit:
            del history[:-limit]  # amortised: trim in chunks, not on every candle
        self._now_ms = max(self._now_ms, candle.ts_ms + self._interval_ms - 1)
        return fills

    # -- the Exchange port --------------------------------------------------------------------

    async def market(self, symbol: str) -> MarketInfo:
        await self._enter("market")
        return self._engine.market(symbol)

    async def server_time_ms(self) -> int:
        await self._enter("server_time_ms")
        return self._now_ms

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        """Return the first ``limit`` closed candles with open time >= ``since_ms``, oldest first."""
        await self._enter("fetch_candles")
        self._engine.market(symbol)
        history = self._candles.get(symbol, [])
        start = bisect_left(history, since_ms, key=_candle_ts)
        return tuple(history[start : start + max(limit, 0)])

    async def fetch_book(self, symbol: str) -> Book:
        await self._enter("fetch_book")
        book = self._engine.book(symbol)
        if book is None:
            raise ExchangeUnavailableError(f"simulated: no book yet for {symbol}")
        return book

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        """Return the free balance of every asset."""
        await self._enter("fetch_balances")
        return self._engine.balances()

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]:
        await self._enter("fetch_open_orders")
        return self._engine.open_orders(symbol)

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        """Return our fills with time >= ``since_ms``, oldest first."""
        await self._enter("fetch_fills")
        return self._engine.fills_since(symbol, since_ms)

    async def fetch_orders(self, symbol: str, limit: int | None = None) -> Sequence[OrderStatus]:
        """Return the orders of ``symbol`` ever placed here, open or closed, oldest first."""
        await self._enter("fetch_orders")
        return orders_of(self._engine, symbol, limit)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        """Return the order with this client order id, or None if the sim never saw it."""
        await self._enter("fetch_order")
        return self._engine.order_status(symbol, client_order_id)

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        """Place a post-only limit order at the simulated time; return the exchange order id."""
        fault = await self._enter("place")
        try:
            self._engine.place(symbol, order, self._now_ms)
        except OrderRejectedError as e:
            if fault == "drop_after_accept":
                raise _lost_answer(symbol, order) from e
            raise
        if fault == "drop_after_accept":
            raise _lost_answer(symbol, order)
        return str(self._engine.order_id(symbol, order.client_order_id))

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        await self._enter("cancel")
        self._engine.cancel(symbol, client_order_id, self._now_ms)

    async def _enter(self, method: str) -> FaultKind | None:
        faults = self.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        fault = faults.draw(method)
        if fault == "timeout":
            raise ExchangeUnavailableError(f"simulated timeout in {method}")
        return fault


def orders_of(engine: MatchingEngine, symbol: str, limit: int | None) -> tuple[OrderStatus, ...]:
    """Return the orders of ``symbol`` placed on ``engine``, oldest first (the last ``limit``)."""
    engine.market(symbol)  # refuse an unknown symbol
    ids = dict.fromkeys(
        e.client_order_id for e in engine.events if e.symbol == symbol and e.event == "placed"
    )
    orders = [status for cid in ids if (status := engine.order_status(symbol, cid)) is not None]
    return tuple(orders if limit is None else orders[-limit:] if limit > 0 else [])


def _lost_answer(symbol: str, order: PlaceLimit) -> AmbiguousOrderError:
    return AmbiguousOrderError(
        f"simulated: order {order.client_order_id!r} on {symbol} was sent but no answer came"
    )


__all__ = ["METHODS", "FaultKind", "Faults", "SimExchange"]
