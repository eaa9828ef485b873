"""Values the decision core reads and writes: candles, book, orders, fills, intents."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from nutcracker.core.units import base_value_qu

# The values a pulse builds are dataclasses (for repr, equality, hash, ``fields`` and ``replace``)
# with ``Final`` fields and an explicit ``__init__``: mypyc compiles that ``__init__`` into a
# native constructor (~40 ns, where a frozen dataclass's generated one runs interpreted, ~900 ns)
# and makes the fields read-only. Uncompiled, mypy refuses any assignment to them.


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(slots=True, init=False, unsafe_hash=True)
class Candle:
    """A closed candle; prices in integer ticks, volume in base units."""

    ts_ms: Final[int]  # open time, exchange clock
    open: Final[int]
    high: Final[int]
    low: Final[int]
    close: Final[int]
    volume: Final[float]

    def __init__(
        self,
        ts_ms: int,
        open: int,  # noqa: A002 - the field's name
        high: int,
        low: int,
        close: int,
        volume: float = 0.0,
    ) -> None:
        self.ts_ms = ts_ms
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume


@dataclass(slots=True, init=False, unsafe_hash=True)
class Book:
    """Top of book in ticks; sizes in lots (0 when unknown)."""

    best_bid: Final[int]
    best_ask: Final[int]
    bid_lots: Final[int]
    ask_lots: Final[int]

    def __init__(self, best_bid: int, best_ask: int, bid_lots: int = 0, ask_lots: int = 0) -> None:
        self.best_bid = best_bid
        self.best_ask = best_ask
        self.bid_lots = bid_lots
        self.ask_lots = ask_lots


@dataclass(slots=True, init=False, unsafe_hash=True)
class OpenOrder:
    """One of this engine's resting orders as the exchange reports it."""

    client_order_id: Final[str]
    side: Final[Side]
    price: Final[int]  # ticks
    qty: Final[int]  # original quantity, lots
    filled: Final[int]  # lots filled so far

    def __init__(self, client_order_id: str, side: Side, price: int, qty: int, filled: int = 0) -> None:
        self.client_order_id = client_order_id
        self.side = side
        self.price = price
        self.qty = qty
        self.filled = filled

    @property
    def remaining(self) -> int:
        return self.qty - self.filled


@dataclass(slots=True, init=False, unsafe_hash=True)
class Fill:
    """A maker fill of one of our orders and the commission the exchange took for it.

    The commission is charged in one asset (Binance: the asset received unless the account pays
    in BNB). ``fee`` is what it costs in quote units (qu): paid in quote, or a third asset's
    commission valued in quote (conservatively, see ``fee_asset``); it is 0 when the commission
    was taken from the base a buy received. ``fee_base`` is that base commission in base units
    (``units.BU_PER_LOT`` per lot): the buy received ``qty`` lots minus ``fee_base`` bu.
    ``fee_asset`` names the asset charged as the exchange does ("" when it did not say: the
    quote asset); ``commission`` is the exchange's own amount, an exact decimal ("" if unknown).
    """

    trade_id: Final[str]
    client_order_id: Final[str]
    side: Final[Side]
    price: Final[int]
    qty: Final[int]
    fee: Final[int]
    ts_ms: Final[int]
    fee_base: Final[int]
    fee_asset: Final[str]
    commission: Final[str]

    def __init__(
        self,
        trade_id: str,
        client_order_id: str,
        side: Side,
        price: int,
        qty: int,
        fee: int,
        ts_ms: int,
        fee_base: int = 0,
        fee_asset: str = "",
        commission: str = "",
    ) -> None:
        self.trade_id = trade_id
        self.client_order_id = client_order_id
        self.side = side
        self.price = price
        self.qty = qty
        self.fee = fee
        self.ts_ms = ts_ms
        self.fee_base = fee_base
        self.fee_asset = fee_asset
        self.commission = commission

    @property
    def fee_value(self) -> int:
        """Return the whole commission valued in qu: a base fee at this fill's price (exact)."""
        return self.fee + base_value_qu(self.price, self.fee_base)


@dataclass(slots=True, init=False, unsafe_hash=True)
class Snapshot:
    """Everything one pulse knows, hydrated fresh from the exchange.

    ``candles`` are closed candles, oldest first, at least the ones newer than the
    indicator state; ``fills`` are our fills not yet applied to the ledger, oldest first.
    Balances are free amounts (not locked in orders). ``quote_allowance`` is granted by the
    engine's portfolio rails when several symbols spend one quote asset.
    """

    symbol: Final[str]
    ts_ms: Final[int]
    candles: Final[tuple[Candle, ...]]
    book: Final[Book]
    free_base: Final[int]  # lots
    free_quote: Final[int]  # quote units
    open_orders: Final[tuple[OpenOrder, ...]]
    fills: Final[tuple[Fill, ...]]
    quote_allowance: Final[int | None]  # qu more this symbol may commit under portfolio rails

    def __init__(
        self,
        symbol: str,
        ts_ms: int,
        candles: tuple[Candle, ...],
        book: Book,
        free_base: int,
        free_quote: int,
        open_orders: tuple[OpenOrder, ...],
        fills: tuple[Fill, ...] = (),
        quote_allowance: int | None = None,
    ) -> None:
        self.symbol = symbol
        self.ts_ms = ts_ms
        self.candles = candles
        self.book = book
        self.free_base = free_base
        self.free_quote = free_quote
        self.open_orders = open_orders
        self.fills = fills
        self.quote_allowance = quote_allowance


@dataclass(slots=True, init=False, unsafe_hash=True)
class PlaceLimit:
    """Place a post-only limit order."""

    client_order_id: Final[str]
    side: Final[Side]
    price: Final[int]
    qty: Final[int]
    reason: Final[str]

    def __init__(self, client_order_id: str, side: Side, price: int, qty: int, reason: str) -> None:
        self.client_order_id = client_order_id
        self.side = side
        self.price = price
        self.qty = qty
        self.reason = reason


@dataclass(slots=True, init=False, unsafe_hash=True)
class CancelOrder:
    """Cancel one of our resting orders."""

    client_order_id: Final[str]
    reason: Final[str]

    def __init__(self, client_order_id: str, reason: str) -> None:
        self.client_order_id = client_order_id
        self.reason = reason


@dataclass(slots=True, init=False, unsafe_hash=True)
class PlannedLevel:
    """One order the strategy planned this pulse, and whether it rests (``decide(..., with_levels=True)``).

    ``outcome`` is ``resting`` (placed or kept) or why not: ``rails``, ``cooldown``, ``balance``
    (free funds or the portfolio budget), ``above_top`` (would cross the book or the depth gate),
    ``purged`` (beyond the purge distance), ``window`` (below the levels a grid keeps resting, or a
    floating ladder's deeper level, which rests once the level above it fills), ``gated`` (a gate stops
    every buy: volatility, no new sequence), ``held`` (the level's lot is held: its exit sells it),
    ``dust`` (an exit below the minimum notional), ``skipped`` (a size of no lot).
    """

    slot: Final[str]
    side: Final[Side]
    price: Final[int]  # ticks
    qty: Final[int]  # lots
    outcome: Final[str]

    def __init__(self, slot: str, side: Side, price: int, qty: int, outcome: str) -> None:
        self.slot = slot
        self.side = side
        self.price = price
        self.qty = qty
        self.outcome = outcome


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
