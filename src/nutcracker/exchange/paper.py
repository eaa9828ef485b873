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
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit
from nutcracker.errors import ConfigError
from nutcracker.exchange.matching import MatchingEngine
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
    ) -> None:
        """Trade ``symbols`` on paper from ``balances``.

        Args:
            maker_fee: the fee fraction paper fills pay (default: the exchange's market maker fee).
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
        for candle in candles:
            if fed is None or candle.ts_ms > fed:
                engine.on_candle(symbol, candle, self._source.interval_ms)
                fed = candle.ts_ms
        if fed is not None:
            self._fed_ms[symbol] = fed
        return candles

    async def fetch_book(self, symbol: str) -> Book:
        """Return the real top of book and make it the local engine's book."""
        engine = await self._matching(symbol)
        book = await self._source.fetch_book(symbol)
        engine.set_book(symbol, book)
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
        engine.place(symbol, order, await self._source.server_time_ms())
        return str(engine.order_id(symbol, order.client_order_id))

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        engine = await self._matching(symbol)
        engine.cancel(symbol, client_order_id, await self._source.server_time_ms())

    # -- internals ----------------------------------------------------------------------------

    async def _matching(self, symbol: str | None = None) -> MatchingEngine:
        if symbol is not None and symbol not in self._symbols:
            raise ConfigError(
                f"{symbol!r} is not one of the paper-traded symbols ({', '.join(self._symbols)}): add it"
            )
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    self._engine = await self._build()
        return self._engine

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
