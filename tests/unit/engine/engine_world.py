"""A small simulated world for engine tests: SimExchange over a MatchingEngine, synthetic candles,
a journal and a clock that reads the simulator's time. Real parts, no mocks.

``Recording`` wraps any exchange and logs every call in order (and can hold one symbol's calls
back); ``WriteAheadCheck`` asserts, at the moment an order or cancel is sent, that the journal
already holds its intent as ``pending`` (read through a separate reader when given, so a
SQLite journal must have it committed on disk).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from factories import symbol_params
from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit, Side
from nutcracker.core.params import SymbolParams
from nutcracker.core.records import IntentRow
from nutcracker.core.units import Precision, notional_qu
from nutcracker.engine.ports import Exchange, Journal
from nutcracker.engine.worker import SymbolWorker, WorkerSettings
from nutcracker.exchange.matching import MatchingEngine, OrderEvent
from nutcracker.exchange.simulated import Faults, SimExchange
from nutcracker.marketdata.candles import to_candles
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.store.memory import InMemoryJournal

BTC = "BTC/USDT"
ETH = "ETH/USDT"
BTC_PRECISION = Precision(Decimal("0.01"), Decimal("0.00001"))
ETH_PRECISION = Precision(Decimal("0.01"), Decimal("0.0001"))
MARKETS = {
    BTC: MarketInfo(BTC, "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal(5), Decimal("0.001")),
    ETH: MarketInfo(ETH, "ETH", "USDT", Decimal("0.01"), Decimal("0.0001"), Decimal(5), Decimal("0.001")),
}
PRICES = {BTC: Decimal(50_000), ETH: Decimal(3_000)}
PRECISIONS = {BTC: BTC_PRECISION, ETH: ETH_PRECISION}
WARMUP = 60  # candles advanced before the first pulse: the indicators are ready at once


def params_for(symbol: str = BTC, **sections: Any) -> SymbolParams:
    """Return grid params for ``symbol`` (BTC/USDT as in ``factories``; ETH/USDT on its own grid)."""
    params = symbol_params()
    if symbol == ETH:
        precision = ETH_PRECISION
        params = replace(
            params,
            market=replace(
                params.market,
                symbol=ETH,
                base="ETH",
                precision=precision,
                min_notional_qu=precision.quote_to_qu(Decimal(5)),
            ),
            rails=replace(
                params.rails,
                max_base_lots=100_000,
                max_quote_qu=precision.quote_to_qu(Decimal(5000)),
            ),
            grid=replace(params.grid, order_quote_qu=precision.quote_to_qu(Decimal(100))),
            order_id_prefix="nctETHUSDT",
        )
    return replace(params, **sections)


class SimClock:
    """The engine clock of a simulated world: the simulator's time."""

    def __init__(self, sim: SimExchange) -> None:
        self.sim = sim

    def now_ms(self) -> int:
        return self.sim.now_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


@dataclass
class World:
    """A MatchingEngine, its SimExchange, seeded candles per symbol and a journal."""

    engine: MatchingEngine
    sim: SimExchange
    candles: dict[str, tuple[Candle, ...]]
    journal: Journal
    cursor: dict[str, int] = field(default_factory=dict)
    latest: dict[str, Candle] = field(default_factory=dict)

    @property
    def clock(self) -> SimClock:
        return SimClock(self.sim)

    def advance(self, n: int = 1, symbols: Sequence[str] | None = None) -> list[Fill]:
        """Advance ``n`` candles on every symbol (or the ones given); return the fills they made."""
        fills: list[Fill] = []
        for _ in range(n):
            for symbol in symbols or self.candles:
                i = self.cursor.get(symbol, 0)
                candle = self.candles[symbol][i]
                if symbol in self.latest and candle.ts_ms <= self.latest[symbol].ts_ms:
                    raise ValueError("advance() after hand-made candles: use advance_with() from there on")
                fills.extend(self.sim.advance(symbol, candle))
                self.latest[symbol] = candle
                self.cursor[symbol] = i + 1
        return fills

    def advance_with(self, symbol: str, candle: Candle) -> list[Fill]:
        """Advance one hand-made candle on ``symbol`` (its open time must follow the last one)."""
        fills = self.sim.advance(symbol, candle)
        self.latest[symbol] = candle
        return fills

    def last(self, symbol: str = BTC) -> Candle:
        """Return the last candle advanced on ``symbol``."""
        return self.latest[symbol]

    def worker(
        self,
        params: SymbolParams | None = None,
        *,
        exchange: Exchange | None = None,
        journal: Journal | None = None,
        settings: WorkerSettings | None = None,
        **kwargs: Any,
    ) -> SymbolWorker:
        return SymbolWorker(
            params or params_for(BTC),
            exchange or self.sim,
            journal or self.journal,
            self.clock,
            settings=settings,
            **kwargs,
        )

    def ours(self, symbol: str = BTC, prefix: str | None = None) -> tuple[OpenOrder, ...]:
        prefix = prefix or params_for(symbol).order_id_prefix
        return tuple(o for o in self.engine.open_orders(symbol) if o.client_order_id.startswith(prefix + "-"))

    def placed_ids(self) -> list[str]:
        return [e.client_order_id for e in self.engine.events if e.event == "placed"]


def make_world(
    symbols: Sequence[str] = (BTC,),
    *,
    journal: Journal | None = None,
    balances: Mapping[str, Decimal] | None = None,
    seed: int = 3,
    n: int = 600,
    warmup: int = WARMUP,
    faults: Faults | None = None,
) -> World:
    engine = MatchingEngine(
        {s: MARKETS[s] for s in symbols}, balances or {"USDT": Decimal(10_000), "BTC": Decimal(0)}
    )
    sim = SimExchange(engine, faults=faults)
    candles = {
        s: to_candles(synthetic_candles(seed + i, n, PRICES[s], PRECISIONS[s], symbol=s))
        for i, s in enumerate(symbols)
    }
    world = World(engine, sim, candles, journal if journal is not None else InMemoryJournal())
    world.advance(warmup)
    return world


def falling(last: Candle, n: int, step: int, spread: int = 50, interval_ms: int = 60_000) -> list[Candle]:
    """Return ``n`` candles after ``last`` whose closes fall by ``step`` ticks each (``step < 0``: rise)."""
    out = []
    close = last.close
    for i in range(1, n + 1):
        open_ = close
        close = open_ - step
        out.append(
            Candle(
                last.ts_ms + i * interval_ms,
                open_,
                max(open_, close) + spread,
                min(open_, close) - spread,
                close,
            )
        )
    return out


class Recording:
    """Wrap an exchange: log every call as (method, symbol, detail), optionally hold a symbol's calls."""

    def __init__(self, inner: Exchange) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}  # symbol -> its calls wait for this event
        self.before_send: Callable[[str, str, str], None] | None = None  # (action, symbol, cid)
        self.server_time_shift_ms = 0

    async def _gate(self, symbol: str) -> None:
        gate = self.gates.get(symbol)
        if gate is not None:
            await gate.wait()

    async def market(self, symbol: str) -> MarketInfo:
        return await self.inner.market(symbol)

    async def server_time_ms(self) -> int:
        self.calls.append(("server_time_ms", "", ""))
        return await self.inner.server_time_ms() + self.server_time_shift_ms

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        await self._gate(symbol)
        self.calls.append(("fetch_candles", symbol, str(since_ms)))
        return await self.inner.fetch_candles(symbol, since_ms, limit)

    async def fetch_book(self, symbol: str) -> Book:
        await self._gate(symbol)
        self.calls.append(("fetch_book", symbol, ""))
        return await self.inner.fetch_book(symbol)

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        self.calls.append(("fetch_balances", "", ""))
        return await self.inner.fetch_balances()

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]:
        await self._gate(symbol)
        self.calls.append(("fetch_open_orders", symbol, ""))
        return await self.inner.fetch_open_orders(symbol)

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        await self._gate(symbol)
        self.calls.append(("fetch_fills", symbol, str(since_ms)))
        return await self.inner.fetch_fills(symbol, since_ms)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        self.calls.append(("fetch_order", symbol, client_order_id))
        return await self.inner.fetch_order(symbol, client_order_id)

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        if self.before_send is not None:
            self.before_send("place", symbol, order.client_order_id)
        self.calls.append(("place", symbol, order.client_order_id))
        return await self.inner.place(symbol, order)

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        if self.before_send is not None:
            self.before_send("cancel", symbol, client_order_id)
        self.calls.append(("cancel", symbol, client_order_id))
        await self.inner.cancel(symbol, client_order_id)

    def sent(self, action: str) -> list[str]:
        return [cid for method, _, cid in self.calls if method == action]


class WriteAheadCheck:
    """``before_send`` hook: the intent must be journaled as pending before the exchange sees it."""

    def __init__(self, intents_of: Callable[[str], list[IntentRow]]) -> None:
        self.intents_of = intents_of
        self.checked: dict[str, int] = {"place": 0, "cancel": 0}

    def __call__(self, action: str, symbol: str, client_order_id: str) -> None:
        rows = [
            r for r in self.intents_of(symbol) if r.client_order_id == client_order_id and r.action == action
        ]
        assert rows, f"{action} {client_order_id} was sent before its intent was journaled"
        assert rows[-1].status == "pending", f"{action} {client_order_id} is {rows[-1].status} when sent"
        self.checked[action] += 1


def replay_commitment(
    events: Sequence[OrderEvent], prefixes: Mapping[str, str], precision: Mapping[str, Precision]
) -> list[Decimal]:
    """Return, after every event, the quote committed by our orders: open buy notional + bought cost.

    Valid while no sell of ours has filled (the callers assert that).
    """
    open_buys: dict[str, tuple[str, int, int]] = {}  # cid -> (symbol, price, remaining)
    bought = Decimal(0)
    out = []
    for e in events:
        if not e.client_order_id.startswith(prefixes[e.symbol] + "-"):
            continue
        p = precision[e.symbol]
        if e.side is Side.SELL:
            assert e.event not in ("filled", "partially_filled"), "a sell filled: the replay would be wrong"
            continue
        if e.event == "placed":
            open_buys[e.client_order_id] = (e.symbol, e.price, e.qty)
        elif e.event == "cancelled":
            open_buys.pop(e.client_order_id, None)
        elif e.event in ("filled", "partially_filled"):
            symbol, price, remaining = open_buys[e.client_order_id]
            bought += p.qu_to_quote(notional_qu(e.price, e.qty))
            if remaining - e.qty:
                open_buys[e.client_order_id] = (symbol, price, remaining - e.qty)
            else:
                del open_buys[e.client_order_id]
        resting = sum(
            (precision[s].qu_to_quote(notional_qu(price, qty)) for s, price, qty in open_buys.values()),
            Decimal(0),
        )
        out.append(resting + bought)
    return out
