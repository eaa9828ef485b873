"""Values the decision core reads and writes: candles, book, orders, fills, intents."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Candle:
    """A closed candle; prices in integer ticks, volume in base units."""

    ts_ms: int  # open time, exchange clock
    open: int
    high: int
    low: int
    close: int
    volume: float = 0.0


@dataclass(frozen=True, slots=True)
class Book:
    """Top of book in ticks; sizes in lots (0 when unknown)."""

    best_bid: int
    best_ask: int
    bid_lots: int = 0
    ask_lots: int = 0


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """One of this engine's resting orders as the exchange reports it."""

    client_order_id: str
    side: Side
    price: int  # ticks
    qty: int  # original quantity, lots
    filled: int = 0  # lots filled so far

    @property
    def remaining(self) -> int:
        return self.qty - self.filled


@dataclass(frozen=True, slots=True)
class Fill:
    """A maker fill of one of our orders; ``fee`` in quote units."""

    trade_id: str
    client_order_id: str
    side: Side
    price: int
    qty: int
    fee: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one pulse knows, hydrated fresh from the exchange.

    ``candles`` are closed candles, oldest first, at least the ones newer than the
    indicator state; ``fills`` are our fills not yet applied to the ledger, oldest first.
    Balances are free amounts (not locked in orders). ``quote_allowance`` is granted by the
    engine's portfolio rails when several symbols spend one quote asset.
    """

    symbol: str
    ts_ms: int
    candles: tuple[Candle, ...]
    book: Book
    free_base: int  # lots
    free_quote: int  # quote units
    open_orders: tuple[OpenOrder, ...]
    fills: tuple[Fill, ...] = ()
    quote_allowance: int | None = None  # qu more this symbol may commit under portfolio rails


@dataclass(frozen=True, slots=True)
class PlaceLimit:
    """Place a post-only limit order."""

    client_order_id: str
    side: Side
    price: int
    qty: int
    reason: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one of our resting orders."""

    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """The exchange's rules for one spot market."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal
    maker_fee: Decimal  # a fraction, e.g. 0.001 for 10 bps


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """What the exchange says about one order, looked up by client order id."""

    order: OpenOrder
    status: str  # "open", "filled", "cancelled", "rejected"


Intent = PlaceLimit | CancelOrder
