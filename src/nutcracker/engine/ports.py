"""Ports the engine needs; adapters fit them structurally and never import this module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit


class Clock(Protocol):
    def now_ms(self) -> int: ...


class Exchange(Protocol):
    """One exchange account, in the integer units of each market (ticks, lots, quote units).

    Every method may raise ``ExchangeUnavailableError`` (data-stall); ``place`` may raise
    ``AmbiguousOrderError`` when the request went out but no answer came back.
    """

    async def market(self, symbol: str) -> MarketInfo: ...

    async def server_time_ms(self) -> int: ...

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        """Return closed candles with open time >= ``since_ms``, oldest first."""
        ...

    async def fetch_book(self, symbol: str) -> Book: ...

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        """Return the free (unlocked) balance of every asset."""
        ...

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]: ...

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        """Return our fills with time >= ``since_ms``, oldest first (may repeat known ones)."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        """Return the order with this client order id, or None if the exchange never took it."""
        ...

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        """Place a post-only limit order; return the exchange's order id."""
        ...

    async def cancel(self, symbol: str, client_order_id: str) -> None: ...
