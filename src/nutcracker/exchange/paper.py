"""PaperExchange: live public market data, local simulated fills (``nutcracker run --mode paper``).

Market data (rules, exchange time, closed candles, top of book) comes from a public source, a
``CcxtExchange`` built without keys. Orders never leave the process: a local ``MatchingEngine``
holds them, with balances starting from the configured paper balance, and fills them by the same
rules as the backtest:

- every closed candle ``fetch_candles`` returns for the first time is fed, oldest first, to the
  engine's ``on_candle``: a resting buy fills when the candle traded strictly below it, a sell when
  it traded strictly above; the maker fee is charged as Binance does, in the asset received (a
  buy's in base, a sell's in quote), and each fill says so (``Fill.fee_asset``, ``fee_base``);
- the engine's book follows the real one: each ``fetch_book`` sets it, so a post-only order that
  would cross the real book is rejected (``PostOnlyRejectedError``), as the exchange would;
- orders and cancels are stamped with the exchange's time.

Fills therefore appear when the engine hydrates candles (once per pulse); a candle that was still
open when an order was placed can fill it with a price it reached before the order existed, as in a
backtest whose pulse ran mid-candle. Nothing here reads a local clock.

Restarts. With a ``PaperStore`` (``paper_store.py``: a file next to the journal) the session
resumes exactly: every call that changes the local engine is logged there before it runs, and the
next session replays the log into a fresh engine, so resting orders, balances, fills and the
trade id counter carry on (a restarted fill simulator that handed out trade ids from 1 again
would see its new fills deduplicated by the journal as already booked). The stored setup
(markets, starting balances) wins over the config's on resume; other symbols are refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit
from nutcracker.errors import ConfigError, ExchangeError
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.exchange.paper_store import (
    Entry,
    PaperStore,
    book_entry,
    book_of,
    cancel_entry,
    cancel_of,
    candle_entry,
    candle_of,
    market_from_json,
    place_entry,
    place_of,
)
from nutcracker.exchange.simulated import orders_of


class MarketData(Protocol):
    """The public part of an exchange that paper trading reads (``CcxtExchange`` fits it)."""

    @property
    def interval_ms(self) -> int: ...

    async def market(self, symbol: str) -> MarketInfo: ...

    async def server_time_ms(self) -> int: ...

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]: ...

    async def fetch_book(self, symbol: str) -> Book: ...


class PaperExchange:
    """Fit the Exchange port with public data from ``source`` and fills from a local MatchingEngine."""

    def __init__(
        self,
        source: MarketData,
        symbols: Sequence[str],
        balances: Mapping[str, Decimal],
        *,
        maker_fee: Decimal | None = None,
        store: PaperStore | None = None,
    ) -> None:
        """Trade ``symbols`` on paper from ``balances``.

        Args:
            maker_fee: the fee fraction paper fills pay (default: the exchange's market maker fee).
            store: where the session is kept across restarts (resumed when it holds one).
        """
        if not symbols:
            raise ConfigError("paper trading needs at least one symbol")
        self._source = source
        self._symbols = tuple(dict.fromkeys(symbols))
        self._balances = dict(balances)
        self._maker_fee = maker_fee
        self._engine: MatchingEngine | None = None
        self._lock = asyncio.Lock()
        self._fed_ms: dict[str, int] = {}  # open time of the last candle fed to the engine
        self._store = store
        self._books: dict[str, Book] = {}  # books set since the last logged call (only the last counts)

    @property
    def engine(self) -> MatchingEngine | None:
        """Return the local matching engine (its order log and fills), None before the first call."""
        return self._engine

    # -- the Exchange port --------------------------------------------------------------------

    async def market(self, symbol: str) -> MarketInfo:
        return (await self._matching(symbol)).market(symbol)

    async def server_time_ms(self) -> int:
        return await self._source.server_time_ms()

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        """Return the source's closed candles; feed the ones not seen yet to the local engine."""
        engine = await self._matching(symbol)
        candles = await self._source.fetch_candles(symbol, since_ms, limit)
        fed = self._fed_ms.get(symbol)
        new = [c for c in candles if fed is None or c.ts_ms > fed]  # candles come oldest first
        interval = self._source.interval_ms
        self._log([candle_entry(symbol, c, interval) for c in new])
        for candle in new:
            engine.on_candle(symbol, candle, interval)
        if new:
            self._fed_ms[symbol] = new[-1].ts_ms
        return candles

    async def fetch_book(self, symbol: str) -> Book:
        """Return the real top of book and make it the local engine's book."""
        engine = await self._matching(symbol)
        book = await self._source.fetch_book(symbol)
        engine.set_book(symbol, book)
        if self._store is not None:
            self._books[symbol] = book  # logged with the next call it can matter to
        return book

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        """Return the free paper balance of every asset."""
        return (await self._matching()).balances()

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]:
        return (await self._matching(symbol)).open_orders(symbol)

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        """Return the paper fills with time >= ``since_ms``, oldest first."""
        return (await self._matching(symbol)).fills_since(symbol, since_ms)

    async def fetch_orders(self, symbol: str, limit: int | None = None) -> Sequence[OrderStatus]:
        """Return the orders of ``symbol`` ever placed here, open or closed, oldest first."""
        return orders_of(await self._matching(symbol), symbol, limit)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        """Return the paper order with this client order id, or None if it was never placed."""
        return (await self._matching(symbol)).order_status(symbol, client_order_id)

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        """Rest a post-only paper order at the exchange's time; return its paper order id."""
        engine = await self._matching(symbol)
        ts_ms = await self._source.server_time_ms()
        self._log([place_entry(symbol, order, ts_ms)])
        engine.place(symbol, order, ts_ms)
        return str(engine.order_id(symbol, order.client_order_id))

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        engine = await self._matching(symbol)
        ts_ms = await self._source.server_time_ms()
        self._log([cancel_entry(symbol, client_order_id, ts_ms)])
        engine.cancel(symbol, client_order_id, ts_ms)

    # -- internals ----------------------------------------------------------------------------

    async def _matching(self, symbol: str | None = None) -> MatchingEngine:
        if symbol is not None and symbol not in self._symbols:
            raise ConfigError(
                f"{symbol!r} is not one of the paper-traded symbols ({', '.join(self._symbols)}): add it"
            )
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    self._engine = await self._open()
        return self._engine

    def _log(self, entries: list[Entry]) -> None:
        """Durably log calls (after the books they saw) before they run: the store is write-ahead."""
        if self._store is None or not entries:
            return
        books = [book_entry(symbol, book) for symbol, book in self._books.items()]
        self._store.append(books + entries)
        self._books.clear()

    async def _open(self) -> MatchingEngine:
        """Resume the stored session, or build a new engine (and store its setup)."""
        setup = self._store.setup() if self._store is not None else None
        if setup is not None:
            return self._resume(setup)
        engine = await self._build()
        if self._store is not None:
            self._store.begin([engine.market(s) for s in self._symbols], self._balances)
        return engine

    def _resume(self, setup: dict[str, Any]) -> MatchingEngine:
        """Rebuild the last session's engine from its setup and replay its logged calls."""
        store = self._store
        assert store is not None
        markets = {m.symbol: m for m in map(market_from_json, setup["markets"])}
        if set(markets) != set(self._symbols):
            raise ConfigError(
                f"the paper session in {store.path} trades {', '.join(markets)}, the config "
                f"{', '.join(self._symbols)}: start a new paper session with another --journal"
            )
        balances = {a: Decimal(v) for a, v in setup["balances"].items()}
        engine = MatchingEngine(markets, balances)
        for kind, symbol, payload in store.entries():
            try:
                if kind == "book":
                    engine.set_book(symbol, book_of(payload))
                elif kind == "candle":
                    candle, interval = candle_of(payload)
                    engine.on_candle(symbol, candle, interval)
                    self._fed_ms[symbol] = candle.ts_ms
                elif kind == "place":
                    order, ts_ms = place_of(payload)
                    engine.place(symbol, order, ts_ms)
                elif kind == "cancel":
                    client_order_id, ts_ms = cancel_of(payload)
                    engine.cancel(symbol, client_order_id, ts_ms)
            except ExchangeError:  # refused then as now: the engine is deterministic
                pass
        return engine

    async def _build(self) -> MatchingEngine:
        markets: dict[str, MarketInfo] = {}
        for symbol in self._symbols:
            info = await self._source.market(symbol)
            if self._maker_fee is not None:
                info = MarketInfo(
                    symbol=info.symbol,
                    base=info.base,
                    quote=info.quote,
                    tick_size=info.tick_size,
                    lot_size=info.lot_size,
                    min_notional=info.min_notional,
                    maker_fee=self._maker_fee,
                )
            markets[symbol] = info
        try:
            return MatchingEngine(markets, self._balances)
        except ValueError as e:
            raise ConfigError(f"paper trading cannot start: {e}; set the paper maker fee or balances") from e


__all__ = ["MarketData", "PaperExchange"]
