"""The deterministic matching engine behind every simulated exchange (backtest, replay, paper, HTTP).

Units: prices are integer ticks, quantities integer lots, fees integer quote units (qu) of the
market (``nutcracker.core.units``). Balances, free or locked, are exact integers of a per-asset
*atom*: the finest decimal place among the asset's lot sizes, quote units and starting balance, so
every balance operation is integer arithmetic; they are ``Decimal`` amounts at the interface.

Placement (post-only limit orders only; ``take`` is the HTTP simulator's separate taker path for
other clients' MARKET and crossing LIMIT orders). An order is refused, with a ``rejected`` event
and one of:

- ``InvalidOrderError``: unknown symbol, price or quantity not positive, notional below the
  market's minimum notional;
- ``OrderRejectedError("Duplicate order sent.")``: the client order id was used before on this
  symbol (by an open, closed or rejected order);
- ``PostOnlyRejectedError``: the order would take: a buy at or above the best ask, a sell at or
  below the best bid. The best ask (bid) is the book's, or our own resting sell (buy) when it is
  better, as a real book shows our orders too;
- ``InsufficientFundsError``: the free balance cannot cover it. A buy locks its notional in
  quote, a sell its quantity in base (the commission comes out of what the fill gives, as on Binance).

Book. ``set_book`` sets it; after each candle it becomes best bid = close, best ask = close + 1 tick
(sizes unknown: 0). The book is the outside market: our orders are not part of it and changing it
fills nothing. Before any book is known, only our own resting orders can make an order cross.

Candles. A resting buy fills, fully, only when the candle traded strictly below its price
(``low < price``); a sell only when ``high > price``; and only when the candle's range holds the
price (a candle that gapped past an order never printed at its price: no fill, pessimistically).
A touch does not fill: we may have been at
the back of the queue at that price. Fills carry the candle's close time, ``ts + interval - 1``.

Trade prints (``on_trade``): queue-aware partial fills. An order placed at the book's best price
on its side has ``queue_ahead`` = the visible size there (``bid_lots``/``ask_lots``), else 0. A
taker sell printing at ``t`` fills each of our buys priced above ``t`` fully (the print swept
through its level); at ``t == price`` the print's quantity first consumes the lots ahead of the
order, and what is left fills it, partially if need be. Taker buys fill our sells symmetrically.
Our orders at the print's price share it in placement order; the outside lots a print consumes are
counted off the queue of every order behind them. A print moves the last trade price, not the book.

Priority and fees. Fills are made in price priority (highest buy, lowest sell; buys first), then
placement order. Every fill pays the maker fee as Binance charges it: in the asset it receives. A
buy spends its notional from its lock and receives ``qty`` lots of base less the commission (the
fill's ``fee_base``, base units); a sell spends base from its lock and receives the notional less
the commission in quote (``fee``, quote units). The commission is ``maker_fee`` of what is received,
rounded up to the commission precision (``COMMISSION_DECIMALS``, 8 as Binance announces), so the
amount reported (``Fill.commission``, plain decimal text, and ``Fill.fee_asset``) is exactly what
was charged. An account with ``fee_asset`` (e.g. ``"BNB"``, at ``fee_asset_price`` quote per unit)
pays instead ``maker_fee x notional / fee_asset_price`` of that asset, rounded up likewise, from
its free balance (no discount); the fill's ``fee`` then values it at ``maker_fee x notional`` qu.
When that balance cannot cover it the commission falls back to the received asset, as on Binance.

Determinism. No clock and no randomness: the caller passes every time; trade ids are ``"1"``,
``"2"``, ... per engine, exchange order ids 1, 2, ...; the same calls give the same ``events`` and
``fills`` lists.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from math import gcd
from operator import attrgetter
from typing import Final, Literal

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit, Side
from nutcracker.core.units import BU_PER_LOT, COMMISSION_STEP, PPM, QU_PER_TICK_LOT, Precision, ceil_div
from nutcracker.errors import (
    ExchangeError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    PostOnlyRejectedError,
)

EventKind = Literal["placed", "cancelled", "rejected", "partially_filled", "filled"]

# Exact arithmetic for balances: a result that would need rounding raises instead.
_EXACT = Context(prec=80, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])

COMMISSION_DECIMALS = 8  # Binance's base/quoteCommissionPrecision: every commission is a multiple of 1e-8
_COMMISSION_STEP = COMMISSION_STEP
assert Decimal(1).scaleb(-COMMISSION_DECIMALS) == _COMMISSION_STEP


@dataclass(slots=True, init=False, unsafe_hash=True)
class OrderEvent:
    """One line of the order log (the backtest's orders.csv).

    ``qty`` is the ordered quantity for ``placed`` and ``rejected``, the cancelled remainder for
    ``cancelled`` and the quantity of this fill for ``partially_filled`` and ``filled``.
    ``reason`` is the intent's reason when placed, the error message when rejected, the trade id
    when filled. Built like the core's values (``core.model``): natively when compiled.
    """

    ts_ms: Final[int]
    symbol: Final[str]
    event: Final[EventKind]
    side: Final[Side]
    price: Final[int]
    qty: Final[int]
    client_order_id: Final[str]
    reason: Final[str]

    def __init__(
        self,
        ts_ms: int,
        symbol: str,
        event: EventKind,
        side: Side,
        price: int,
        qty: int,
        client_order_id: str,
        reason: str = "",
    ) -> None:
        self.ts_ms = ts_ms
        self.symbol = symbol
        self.event = event
        self.side = side
        self.price = price
        self.qty = qty
        self.client_order_id = client_order_id
        self.reason = reason


class _Order:
    __slots__ = (
        "client_order_id",
        "filled",
        "is_buy",
        "order_id",
        "price",
        "priority",
        "qty",
        "queue_ahead",
        "side",
        "status",
    )

    def __init__(self, order_id: int, order: PlaceLimit, queue_ahead: int, status: str) -> None:
        self.order_id = order_id
        self.client_order_id = order.client_order_id
        self.side = order.side
        self.is_buy = order.side is Side.BUY
        self.price = order.price
        self.qty = order.qty
        self.filled = 0
        self.queue_ahead = queue_ahead
        self.status = status
        self.priority = (0, -order.price, order_id) if self.is_buy else (1, order.price, order_id)

    def view(self) -> OpenOrder:
        return OpenOrder(self.client_order_id, self.side, self.price, self.qty, self.filled)


_by_priority = attrgetter("priority")


class _Market:
    __slots__ = (
        "base",
        "base_per_lot",
        "base_step",
        "book",
        "book_close",
        "bounds",
        "fee_den",
        "fee_num",
        "fee_ppm",
        "fills",
        "fills_sorted",
        "info",
        "known",
        "last_price",
        "lot",
        "min_notional_qu",
        "orders",
        "precision",
        "quote",
        "quote_per_qu",
        "quote_step",
        "quote_unit",
        "views",
    )

    def __init__(self, info: MarketInfo) -> None:
        if info.tick_size <= 0 or info.lot_size <= 0:
            raise ValueError(f"{info.symbol}: tick_size and lot_size must be positive")
        fee_ppm = _EXACT.multiply(info.maker_fee, Decimal(PPM))
        if fee_ppm != fee_ppm.to_integral_value():
            raise ValueError(f"{info.symbol}: maker_fee {info.maker_fee} is not a whole number of ppm")
        if not -PPM < fee_ppm < PPM:
            raise ValueError(f"{info.symbol}: maker_fee {info.maker_fee} must lie strictly between -1 and 1")
        self.info = info
        self.base = info.base
        self.quote = info.quote
        self.precision = Precision(tick=info.tick_size, lot=info.lot_size)
        self.lot = info.lot_size
        self.quote_unit = _EXACT.divide(
            _EXACT.multiply(info.tick_size, info.lot_size), Decimal(QU_PER_TICK_LOT)
        )
        self.min_notional_qu = int(
            (info.min_notional / self.quote_unit).to_integral_value(rounding=ROUND_CEILING)
        )
        self.fee_ppm = int(fee_ppm)
        self.base_per_lot = 0  # atoms of the base asset in one lot, set by the engine
        self.quote_per_qu = 0  # atoms of the quote asset in one quote unit
        self.base_step = 0  # atoms of the base asset in one commission step (1e-8)
        self.quote_step = 0
        # a third-asset commission in steps is ceil(fee_qu * fee_num / fee_den) (0/1: none)
        self.fee_num = 0
        self.fee_den = 1
        self.book: Book | None = None
        self.book_close: int | None = None  # the book is still to be built from this candle close
        self.last_price: int | None = None
        self.orders: dict[str, _Order] = {}  # open orders, in placement order
        self.known: dict[str, _Order] = {}  # every order ever seen, open, closed or rejected
        self.bounds: tuple[int | None, int | None] | None = None  # cache of resting_bounds
        self.views: tuple[OpenOrder, ...] | None = None  # cache of open_orders: read twice a pulse
        self.fills: list[Fill] = []
        self.fills_sorted = True  # by ts_ms, which lets fills_since bisect

    def qu_to_quote(self, qu: int) -> Decimal:
        return _EXACT.multiply(Decimal(qu), self.quote_unit)


@dataclass(slots=True, init=False, unsafe_hash=True)
class _Charge:
    """One fill's commission: its value in qu, in base units, the asset and what left the account."""

    fee: Final[int]  # qu: paid in quote, or a third asset valued in quote
    fee_base: Final[int]  # base units (BU_PER_LOT per lot) taken from a buy's base
    asset: Final[str]
    steps: Final[int]  # commission steps (1e-8) charged
    base_atoms: Final[int]  # atoms of base kept back from a buy
    quote_atoms: Final[int]  # atoms of quote kept back from a sell

    def __init__(
        self, fee: int, fee_base: int, asset: str, steps: int, base_atoms: int, quote_atoms: int
    ) -> None:
        self.fee = fee
        self.fee_base = fee_base
        self.asset = asset
        self.steps = steps
        self.base_atoms = base_atoms
        self.quote_atoms = quote_atoms


class MatchingEngine:
    """Match post-only limit orders of one account against candles, trade prints and a book."""

    __slots__ = (
        "_fee_asset",
        "_fee_step",
        "_free",
        "_locked",
        "_markets",
        "_next_order_id",
        "_next_trade_id",
        "_places",
        "events",
        "fills",
    )

    def __init__(
        self,
        markets: Mapping[str, MarketInfo],
        balances: Mapping[str, Decimal],
        fee_asset: str = "",
        fee_asset_price: Decimal | None = None,
    ) -> None:
        """``fee_asset``: "" charges commissions in the asset received (Binance's default); an asset
        such as ``"BNB"`` charges them in it, valued at ``fee_asset_price`` quote per unit."""
        self._markets: dict[str, _Market] = {}
        self._places: dict[str, int] = {}  # asset -> decimal places of its atom
        for symbol, info in markets.items():
            if symbol != info.symbol:
                raise ValueError(f"market {info.symbol} is registered under the key {symbol!r}")
            m = self._markets[symbol] = _Market(info)
            self._need_places(m.base, info.lot_size)
            self._need_places(m.quote, m.quote_unit)
            self._need_places(m.base, _COMMISSION_STEP)
            self._need_places(m.quote, _COMMISSION_STEP)
        if fee_asset:
            if any(fee_asset in (m.base, m.quote) for m in self._markets.values()):
                raise ValueError(f"fee_asset {fee_asset} is traded by a market here: use a third asset")
            if fee_asset_price is None or not fee_asset_price.is_finite() or fee_asset_price <= 0:
                raise ValueError(
                    f"fee_asset {fee_asset} needs a positive fee_asset_price, got {fee_asset_price}"
                )
            self._need_places(fee_asset, _COMMISSION_STEP)
        for asset, amount in balances.items():
            if not amount.is_finite() or amount < 0:
                raise ValueError(f"starting balance of {asset} must be finite and not negative, got {amount}")
            self._need_places(asset, amount)
        places = self._places
        for m in self._markets.values():
            m.base_per_lot = _to_atoms(m.lot, places[m.base])
            m.quote_per_qu = _to_atoms(m.quote_unit, places[m.quote])
            m.base_step = _to_atoms(_COMMISSION_STEP, places[m.base])
            m.quote_step = _to_atoms(_COMMISSION_STEP, places[m.quote])
            if fee_asset and fee_asset_price is not None:
                # steps of the fee asset per qu of fee: quote_unit / price / step, an exact fraction
                qu_num, qu_den = m.quote_unit.as_integer_ratio()
                price_num, price_den = fee_asset_price.as_integer_ratio()
                num, den = qu_num * price_den * 10**COMMISSION_DECIMALS, qu_den * price_num
                g = gcd(num, den)
                m.fee_num, m.fee_den = num // g, den // g
        self._fee_asset = fee_asset
        self._fee_step = _to_atoms(_COMMISSION_STEP, places[fee_asset]) if fee_asset else 0
        self._free = dict.fromkeys(places, 0)
        self._locked = dict.fromkeys(places, 0)
        for asset, amount in balances.items():
            self._free[asset] = _to_atoms(amount, places[asset])
        self._next_order_id = 1
        self._next_trade_id = 1
        self.events: list[OrderEvent] = []  # append-only
        self.fills: list[Fill] = []  # append-only, every symbol

    # -- markets and units -------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols of the markets, in construction order."""
        return tuple(self._markets)

    def market(self, symbol: str) -> MarketInfo:
        """Return the rules of ``symbol``."""
        return self._market(symbol).info

    def precision(self, symbol: str) -> Precision:
        """Return the tick/lot grid of ``symbol``."""
        return self._market(symbol).precision

    def to_units(self, symbol: str, price: Decimal, qty: Decimal) -> tuple[int, int]:
        """Return ``(ticks, lots)`` of a Decimal price and quantity.

        Raises:
            InvalidOrderError: unknown symbol, price off the tick grid or quantity off the lot grid.
        """
        m = self._markets.get(symbol)
        if m is None:
            raise InvalidOrderError(f"Invalid symbol {symbol!r}.")
        if not (price.is_finite() and qty.is_finite()):
            raise InvalidOrderError(f"Invalid order: price {price} and quantity {qty} must be finite.")
        ticks = price / m.info.tick_size
        if ticks != ticks.to_integral_value():
            raise InvalidOrderError(
                f"Filter failure: PRICE_FILTER: price {price} is not a multiple of the tick size "
                f"{m.info.tick_size} on {symbol}"
            )
        lots = qty / m.info.lot_size
        if lots != lots.to_integral_value():
            raise InvalidOrderError(
                f"Filter failure: LOT_SIZE: quantity {qty} is not a multiple of the lot size "
                f"{m.info.lot_size} on {symbol}"
            )
        return int(ticks), int(lots)

    # -- orders -------------------------------------------------------------------------------

    def place(self, symbol: str, order: PlaceLimit, ts_ms: int) -> OpenOrder:
        """Rest a post-only limit order and lock the funds it needs.

        Raises:
            InvalidOrderError: unknown symbol, non-positive price or quantity, notional too small.
            OrderRejectedError: the client order id was used before on this symbol.
            PostOnlyRejectedError: the order would immediately match and take.
            InsufficientFundsError: the free balance does not cover the order.
        """
        m = self._markets.get(symbol)
        if m is None:
            raise self._rejected(None, symbol, order, ts_ms, InvalidOrderError(f"Invalid symbol {symbol!r}."))
        error = self._refusal(m, symbol, order)
        if error is not None:
            raise self._rejected(m, symbol, order, ts_ms, error)
        asset, need = _lock_of(m, order.side is Side.BUY, order.price, order.qty)
        self._free[asset] -= need
        self._locked[asset] += need
        price = order.price

        book = _book_of(m)
        queue_ahead = 0
        if book is not None:
            if order.side is Side.BUY and price == book.best_bid:
                queue_ahead = book.bid_lots
            elif order.side is Side.SELL and price == book.best_ask:
                queue_ahead = book.ask_lots
        resting = _Order(self._next_order_id, order, queue_ahead, "open")
        self._next_order_id += 1
        m.orders[order.client_order_id] = resting
        m.known[order.client_order_id] = resting
        m.views = None
        if m.bounds is not None:
            bid, ask = m.bounds
            if resting.is_buy:
                m.bounds = (price if bid is None else max(bid, price), ask)
            else:
                m.bounds = (bid, price if ask is None else min(ask, price))
        event = OrderEvent(
            ts_ms, symbol, "placed", order.side, price, order.qty, order.client_order_id, order.reason
        )
        self.events.append(event)
        return resting.view()

    def cancel(self, symbol: str, client_order_id: str, ts_ms: int, reason: str = "") -> OpenOrder:
        """Cancel an open order, unlock what its remainder locked and return its last state.

        Raises:
            OrderNotFoundError: the order is unknown or no longer open.
        """
        m = self._market(symbol)
        order = m.orders.get(client_order_id)
        if order is None:
            raise OrderNotFoundError(f"Unknown order sent: {client_order_id!r} is not open on {symbol}.")
        self._close(m, symbol, order, ts_ms, reason)
        return order.view()

    def cancel_all(self, symbol: str, ts_ms: int, reason: str = "") -> tuple[OpenOrder, ...]:
        """Cancel every open order of ``symbol``, in placement order; return them."""
        m = self._market(symbol)
        cancelled = []
        for order in list(m.orders.values()):
            self._close(m, symbol, order, ts_ms, reason)
            cancelled.append(order.view())
        return tuple(cancelled)

    def take(
        self,
        symbol: str,
        order: PlaceLimit,
        levels: Sequence[tuple[int, int]],
        fee_ppm: int,
        ts_ms: int,
        *,
        rest: bool,
    ) -> list[Fill]:
        """Execute ``order`` at once as a taker: the HTTP simulator's crossing LIMIT and MARKET orders.

        Not used by the engine, which stays maker-only. ``levels`` are the (price, lots) the outside
        book gives the order, best first, within its limit; each fill pays ``fee_ppm`` (the taker
        fee) as a maker fill pays its fee. With ``rest`` (a GTC limit order) what the levels do not
        cover rests at ``order.price`` and fills later like any resting order; otherwise it is
        dropped and the order closes (status ``cancelled``). A separate path from ``place``: no
        post-only check, the funds for the taken part and any resting remainder checked up front.

        Raises:
            InvalidOrderError: unknown symbol, non-positive price or quantity, levels beyond the order.
            OrderRejectedError: the client order id was used before on this symbol.
            InsufficientFundsError: the free balance does not cover it.
        """
        m = self._markets.get(symbol)
        if m is None:
            raise self._rejected(None, symbol, order, ts_ms, InvalidOrderError(f"Invalid symbol {symbol!r}."))
        is_buy = order.side is Side.BUY
        taken = 0
        cost = 0  # quote units the taken levels cost a buy, fee included
        valid = order.price > 0 and order.qty > 0
        for level_price, level_lots in levels:
            valid = valid and level_price > 0 and level_lots > 0
            taken += level_lots
            cost += level_price * level_lots * (QU_PER_TICK_LOT + fee_ppm)
        error: OrderRejectedError | None = None
        if not valid or taken > order.qty:
            error = InvalidOrderError(
                f"Invalid taker order: {order.qty} lots at {order.price}, levels {list(levels)}."
            )
        elif order.client_order_id in m.known:
            error = OrderRejectedError("Duplicate order sent.")
        if error is not None:
            raise self._rejected(m, symbol, order, ts_ms, error)
        if is_buy:
            asset, need = m.quote, cost * m.quote_per_qu
        else:
            asset, need = m.base, taken * m.base_per_lot
        remaining = order.qty - taken
        if rest and remaining:
            need += _lock_of(m, is_buy, order.price, remaining)[1]
        if need > self._free[asset]:
            error = InsufficientFundsError(
                "Account has insufficient balance for requested action: needs "
                f"{self._amount(asset, need).normalize():f} {asset}, "
                f"{self._amount(asset, self._free[asset]).normalize():f} {asset} free."
            )
            raise self._rejected(m, symbol, order, ts_ms, error)
        taker = _Order(self._next_order_id, order, 0, "open")
        self._next_order_id += 1
        m.known[order.client_order_id] = taker
        self.events.append(
            OrderEvent(
                ts_ms,
                symbol,
                "placed",
                order.side,
                order.price,
                order.qty,
                order.client_order_id,
                order.reason,
            )
        )
        free = self._free
        fills: list[Fill] = []
        for price, lots in levels:
            taker.filled += lots
            fill = self._settle(m, taker, price, lots, fee_ppm, ts_ms, from_free=True)
            fills.append(fill)
            kind: EventKind = "filled" if taker.filled == order.qty else "partially_filled"
            self.events.append(
                OrderEvent(ts_ms, symbol, kind, order.side, price, lots, order.client_order_id, fill.trade_id)
            )
        if not remaining:
            taker.status = "filled"
        elif rest:
            lock_asset, lock = _lock_of(m, is_buy, order.price, remaining)
            free[lock_asset] -= lock
            self._locked[lock_asset] += lock
            m.orders[order.client_order_id] = taker
            m.bounds = None
        else:
            taker.status = "cancelled"
            self.events.append(
                OrderEvent(
                    ts_ms,
                    symbol,
                    "cancelled",
                    order.side,
                    order.price,
                    remaining,
                    order.client_order_id,
                    "expired",
                )
            )
        m.views = None
        return fills

    # -- market data --------------------------------------------------------------------------

    def set_book(self, symbol: str, book: Book) -> None:
        """Set the outside top of book of ``symbol`` (fills nothing)."""
        m = self._market(symbol)
        m.book = book
        m.book_close = None

    def on_candle(self, symbol: str, candle: Candle, interval_ms: int = 60_000) -> list[Fill]:
        """Fill the orders the candle traded through, then set the book from its close."""
        m = self._market(symbol)
        fills: list[Fill] = []
        if m.orders:
            low, high = candle.low, candle.high
            bid, ask = _bounds_of(m)
            if (bid is not None and bid > low) or (ask is not None and ask < high):
                # traded through, inside the candle's range: a candle that gapped past an order
                # (its whole range beyond it) never printed at its price: no fill (pessimistic)
                hit = [
                    o
                    for o in m.orders.values()
                    if (low < o.price <= high if o.is_buy else low <= o.price < high)
                ]
                hit.sort(key=_by_priority)
                ts_ms = candle.ts_ms + interval_ms - 1
                for order in hit:
                    fills.append(self._fill(m, symbol, order, order.qty - order.filled, ts_ms))
        m.book = None  # built on demand: most candles' books are never read
        m.book_close = candle.close
        m.last_price = candle.close
        return fills

    def on_trade(
        self, symbol: str, ts_ms: int, price: int, qty: int, taker_side: Side, *, at_price: bool = True
    ) -> list[Fill]:
        """Fill the orders a trade print reached, queue-aware at the print's price.

        ``at_price=False`` when the queues are unknown (no book sizes were seen): an order at the
        print's price then keeps waiting, as if the outside queue ahead absorbed the print; only
        orders the print traded through fill (risk-averse).
        """
        if price <= 0 or qty <= 0:
            raise ValueError(f"trade print needs a positive price and quantity, got {price} x {qty}")
        m = self._market(symbol)
        fills: list[Fill] = []
        if m.orders:
            if taker_side is Side.SELL:
                hit = [o for o in m.orders.values() if o.is_buy and o.price >= price]
            else:
                hit = [o for o in m.orders.values() if not o.is_buy and o.price <= price]
            hit.sort(key=_by_priority)
            left = qty  # of the print, at its own price level
            outside_done = 0  # outside lots at this level the print has consumed so far
            for order in hit:
                if order.price != price:  # swept through
                    fills.append(self._fill(m, symbol, order, order.qty - order.filled, ts_ms))
                    continue
                if not at_price:
                    continue
                ahead = order.queue_ahead - outside_done
                if ahead > 0:
                    consumed = min(ahead, left)
                    left -= consumed
                    outside_done += consumed
                order.queue_ahead = max(0, order.queue_ahead - outside_done)
                if left > 0:
                    take = min(left, order.qty - order.filled)
                    left -= take
                    fills.append(self._fill(m, symbol, order, take, ts_ms))
        m.last_price = price
        return fills

    # -- queries ------------------------------------------------------------------------------

    def book(self, symbol: str) -> Book | None:
        """Return the outside top of book of ``symbol``, None before the first one."""
        return _book_of(self._market(symbol))

    def last_price(self, symbol: str) -> int | None:
        """Return the price of the last print or candle close of ``symbol``, None before any."""
        return self._market(symbol).last_price

    def open_orders(self, symbol: str) -> tuple[OpenOrder, ...]:
        """Return the open orders of ``symbol`` in placement order."""
        m = self._market(symbol)
        if m.views is None:
            m.views = tuple(o.view() for o in m.orders.values())
        return m.views

    def order_status(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        """Return the order with this client order id, open or closed; None if never seen."""
        order = self._market(symbol).known.get(client_order_id)
        return None if order is None else OrderStatus(order.view(), order.status)

    def order_id(self, symbol: str, client_order_id: str) -> int | None:
        """Return the exchange order id given to this order when it was placed; None if never placed."""
        order = self._market(symbol).known.get(client_order_id)
        return None if order is None or order.status == "rejected" else order.order_id

    def queue_ahead(self, symbol: str, client_order_id: str) -> int:
        """Return the outside lots still ahead of an open order at its price."""
        order = self._market(symbol).orders.get(client_order_id)
        if order is None:
            raise OrderNotFoundError(f"Unknown order sent: {client_order_id!r} is not open on {symbol}.")
        return order.queue_ahead

    def fills_since(self, symbol: str, since_ms: int) -> tuple[Fill, ...]:
        """Return the fills of ``symbol`` with ``ts_ms >= since_ms``, oldest first."""
        m = self._market(symbol)
        if m.fills_sorted:
            return tuple(m.fills[bisect_left(m.fills, since_ms, key=_fill_ts) :])
        return tuple(f for f in m.fills if f.ts_ms >= since_ms)

    def resting_bounds(self, symbol: str) -> tuple[int | None, int | None]:
        """Return (highest resting buy price, lowest resting sell price) of ``symbol``."""
        return _bounds_of(self._market(symbol))

    def free(self, asset: str) -> Decimal:
        """Return the free balance of ``asset`` (0 if unknown)."""
        return self._amount(asset, self._free.get(asset, 0))

    def locked(self, asset: str) -> Decimal:
        """Return the balance of ``asset`` locked in open orders (0 if unknown)."""
        return self._amount(asset, self._locked.get(asset, 0))

    def balances(self) -> dict[str, Decimal]:
        """Return the free balance of every known asset."""
        return {asset: self._amount(asset, atoms) for asset, atoms in self._free.items()}

    def free_units(self, symbol: str) -> tuple[int, int]:
        """Return the free balances of ``symbol``'s assets in whole lots and whole quote units."""
        m = self._market(symbol)
        return self._free[m.base] // m.base_per_lot, self._free[m.quote] // m.quote_per_qu

    # -- internals ----------------------------------------------------------------------------

    def _need_places(self, asset: str, amount: Decimal) -> None:
        exponent = amount.normalize(_EXACT).as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        self._places[asset] = max(self._places.get(asset, 0), -exponent)

    def _amount(self, asset: str, atoms: int) -> Decimal:
        return _EXACT.scaleb(Decimal(atoms), -self._places.get(asset, 0))

    def _market(self, symbol: str) -> _Market:
        m = self._markets.get(symbol)
        if m is None:
            raise ExchangeError(f"Invalid symbol {symbol!r}.")
        return m

    def _best_prices(self, m: _Market) -> tuple[int | None, int | None]:
        own_bid, own_ask = _bounds_of(m)
        book = _book_of(m)
        if book is None:
            return own_bid, own_ask
        bid = book.best_bid if own_bid is None else max(book.best_bid, own_bid)
        ask = book.best_ask if own_ask is None else min(book.best_ask, own_ask)
        return bid, ask

    def _refusal(self, m: _Market, symbol: str, order: PlaceLimit) -> OrderRejectedError | None:
        """Return why the exchange refuses ``order``, None if it takes it."""
        price, qty = order.price, order.qty
        if price <= 0 or qty <= 0:
            return InvalidOrderError(
                f"Invalid order: price ({price} ticks) and quantity ({qty} lots) must be positive."
            )
        notional = price * qty * QU_PER_TICK_LOT
        if notional < m.min_notional_qu:
            return InvalidOrderError(
                f"Filter failure: NOTIONAL: {m.qu_to_quote(notional).normalize():f} {m.quote} is below "
                f"the minimum notional {m.info.min_notional} {m.quote} on {symbol}."
            )
        if order.client_order_id in m.known:
            return OrderRejectedError("Duplicate order sent.")
        best_bid, best_ask = self._best_prices(m)
        is_buy = order.side is Side.BUY
        if is_buy and best_ask is not None and price >= best_ask:
            return PostOnlyRejectedError(
                f"Order would immediately match and take: buy at {price} >= best ask {best_ask} (ticks) "
                f"on {symbol}."
            )
        if not is_buy and best_bid is not None and price <= best_bid:
            return PostOnlyRejectedError(
                f"Order would immediately match and take: sell at {price} <= best bid {best_bid} (ticks) "
                f"on {symbol}."
            )
        asset, need = _lock_of(m, is_buy, price, qty)
        if need > self._free[asset]:
            return InsufficientFundsError(
                "Account has insufficient balance for requested action: needs "
                f"{self._amount(asset, need).normalize():f} {asset}, "
                f"{self._amount(asset, self._free[asset]).normalize():f} {asset} free."
            )
        return None

    def _rejected(
        self, m: _Market | None, symbol: str, order: PlaceLimit, ts_ms: int, error: OrderRejectedError
    ) -> OrderRejectedError:
        """Record a refused order (its status, unless its id is taken, and a 'rejected' event)."""
        if m is not None and order.client_order_id not in m.known:
            m.known[order.client_order_id] = _Order(0, order, 0, "rejected")
        event = OrderEvent(
            ts_ms, symbol, "rejected", order.side, order.price, order.qty, order.client_order_id, str(error)
        )
        self.events.append(event)
        return error

    def _close(self, m: _Market, symbol: str, order: _Order, ts_ms: int, reason: str) -> None:
        remaining = order.qty - order.filled
        asset, amount = _lock_of(m, order.is_buy, order.price, remaining)
        self._locked[asset] -= amount
        self._free[asset] += amount
        order.status = "cancelled"
        del m.orders[order.client_order_id]
        m.bounds = m.views = None
        event = OrderEvent(
            ts_ms, symbol, "cancelled", order.side, order.price, remaining, order.client_order_id, reason
        )
        self.events.append(event)

    def _commission(self, m: _Market, is_buy: bool, price: int, lots: int, fee_ppm: int) -> _Charge:
        """Charge the commission of one fill as Binance does; return what was charged.

        A third asset (BNB) when the account pays in it and holds enough, else the asset received:
        a buy's in base, a sell's in quote, each rounded up to the commission step.
        """
        fee_qu = price * lots * fee_ppm  # exact, before rounding to the commission step
        free = self._free
        fee = fee_base = 0
        steps = ceil_div(fee_qu * m.fee_num, m.fee_den) if m.fee_num else 0
        fee_asset = self._fee_asset
        if steps and free[fee_asset] >= steps * self._fee_step:  # a third asset, e.g. BNB
            free[fee_asset] -= steps * self._fee_step
            fee = fee_qu  # valued at the fee rate of the notional
            return _Charge(fee, 0, fee_asset, steps, 0, 0)
        if is_buy:  # in the base received, rounded up to the commission step
            steps = ceil_div(lots * fee_ppm * m.base_per_lot, BU_PER_LOT * m.base_step)
            fee_base = ceil_div(steps * m.base_step * BU_PER_LOT, m.base_per_lot)
            return _Charge(0, fee_base, m.base, steps, steps * m.base_step, 0)
        steps = ceil_div(fee_qu * m.quote_per_qu, m.quote_step)  # in the quote received
        fee = ceil_div(steps * m.quote_step, m.quote_per_qu)
        return _Charge(fee, 0, m.quote, steps, 0, steps * m.quote_step)

    def _settle(
        self, m: _Market, order: _Order, price: int, lots: int, fee_ppm: int, ts_ms: int, *, from_free: bool
    ) -> Fill:
        """Move the balances of one fill of ``order`` (from its lock, or from free funds for a
        taker), charge its commission and record the fill."""
        notional = price * lots * QU_PER_TICK_LOT
        spent = self._free if from_free else self._locked
        free = self._free
        charge = self._commission(m, order.is_buy, price, lots, fee_ppm)
        if order.is_buy:
            spent[m.quote] -= notional * m.quote_per_qu
            free[m.base] += lots * m.base_per_lot - charge.base_atoms
        else:
            spent[m.base] -= lots * m.base_per_lot
            free[m.quote] += notional * m.quote_per_qu - charge.quote_atoms
        trade_id = str(self._next_trade_id)
        self._next_trade_id += 1
        fill = Fill(
            trade_id,
            order.client_order_id,
            order.side,
            price,
            lots,
            charge.fee,
            ts_ms,
            charge.fee_base,
            charge.asset,
            _steps_text(charge.steps),
        )
        self.fills.append(fill)
        if m.fills and ts_ms < m.fills[-1].ts_ms:
            m.fills_sorted = False
        m.fills.append(fill)
        return fill

    def _fill(self, m: _Market, symbol: str, order: _Order, lots: int, ts_ms: int) -> Fill:
        price = order.price
        fill = self._settle(m, order, price, lots, m.fee_ppm, ts_ms, from_free=False)
        order.filled += lots
        m.views = None
        trade_id = fill.trade_id
        if order.filled == order.qty:
            order.status = "filled"
            del m.orders[order.client_order_id]
            m.bounds = None
            kind: EventKind = "filled"
        else:
            kind = "partially_filled"
        self.events.append(
            OrderEvent(ts_ms, symbol, kind, order.side, price, lots, order.client_order_id, trade_id)
        )
        return fill


def _bounds_of(m: _Market) -> tuple[int | None, int | None]:
    bounds = m.bounds
    if bounds is None:
        buys = [o.price for o in m.orders.values() if o.is_buy]
        sells = [o.price for o in m.orders.values() if not o.is_buy]
        bounds = m.bounds = (max(buys) if buys else None, min(sells) if sells else None)
    return bounds


def _book_of(m: _Market) -> Book | None:
    if m.book_close is not None:
        m.book = Book(m.book_close, m.book_close + 1)
        m.book_close = None
    return m.book


def _lock_of(m: _Market, is_buy: bool, price: int, lots: int) -> tuple[str, int]:
    """Return the asset and atoms that ``lots`` of an order lock: its notional in quote, or its base."""
    if is_buy:
        return m.quote, price * lots * QU_PER_TICK_LOT * m.quote_per_qu
    return m.base, lots * m.base_per_lot


def _to_atoms(amount: Decimal, places: int) -> int:
    atoms = _EXACT.scaleb(amount, places)
    assert atoms == atoms.to_integral_value()  # places covers every decimal of ``amount``
    return int(atoms)


def _steps_text(steps: int) -> str:
    """Return a whole number of commission steps (1e-8) as exact plain decimal text ("0.000001")."""
    sign, steps = ("-", -steps) if steps < 0 else ("", steps)
    whole, frac = divmod(steps, 10**COMMISSION_DECIMALS)
    digits = f"{frac:0{COMMISSION_DECIMALS}d}".rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def _fill_ts(fill: Fill) -> int:
    return fill.ts_ms


__all__ = ["COMMISSION_DECIMALS", "EventKind", "MatchingEngine", "OrderEvent"]
