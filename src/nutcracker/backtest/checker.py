"""An independent checker of a backtest's output: it replays ``fills.csv`` and ``orders.csv``.

It trusts neither the engine's counters nor its code: it does not import the strategy, the
ledger, the runner or the matching engine. From the effective configuration, the candles and the
two files alone, it rebuilds every order's life and the inventory in exact ``Decimal`` arithmetic,
and reports what breaks the engine's promises. Rules (``RULES``):

- ``rail_violations``: a rail breached. After every event, the whole lots the open cycles hold
  plus the remaining quantity of the open buys must stay <= ``rails.max_base``, and the cost of the
  held lots plus the notional of the open buys <= ``rails.max_quote``. A lot is what one ladder
  level (``B<n>`` in the client order id) bought in one cycle; its held cost is
  ``cost x held / received``, floored to the market's quote unit (``tick x lot / 1e6``), as the
  engine counts it; the cost the dust carries counts too. Counted once per breach (within the
  rails -> beyond them).
- ``taker_fills``: a fill whose liquidity is not ``maker``, or which the candle containing its time
  cannot explain as a maker fill: a resting buy fills only when the candle traded strictly below
  its price (``low < price``), a sell only when strictly above (``high > price``).
- ``out_of_range_fills``: a fill priced outside its candle's ``[low, high]``, or at a time no
  candle contains.
- ``cycles_below_min_profit``: a closed cycle (fills grouped by ``cycle_id``; closed when no whole
  lot of what it received is left) netting less than ``profit.min_net_bps`` of its cost:
  ``proceeds - cost - fees >= min_net_bps / 1e4 x cost``. Commissions count in the asset they were
  paid in (``fee_asset``): one in quote, or a third asset's valued in quote (``fee_quote``), is a
  fee; one taken in base (``fee_base``) leaves the lot fewer base to sell. A lot *received* what it
  bought less its base commission; what a closed cycle leaves below one lot is dust, which takes
  its share of the lot's cost along (the cycle counts the cost of its whole lots, rounded up to the
  quote unit) and joins the next lot bought, with that cost, once it adds up to whole lots.
- ``unmatched_fills``: a fill without a placed order of that id, of an order no longer open, at
  another side or price than the order's, or a fill in one file without its twin in the other.
- ``overfills``: an order filled beyond its placed quantity.
- ``oversells``: a sell of more than its cycle holds: more whole lots than it received (a buy's
  commission in base included) and has not sold.
- ``wrong_fees``: a commission other than ``maker_fee_bps / 1e4`` of what the fill received: a
  buy's ``fee_base`` or a sell's ``fee_quote`` (either exact or rounded up to the 8-decimal
  commission precision and the unit), or ``fee_quote = price x qty x maker_fee_bps / 1e4`` valuing
  a third asset's (BNB); or a base commission on a sell. Files of nine columns (without
  ``fee_base,fee_asset,commission``) are read as commissions in quote.
- ``order_log_errors``: ``orders.csv`` contradicting itself: an id placed twice, a cancel of an
  order not open or of another remainder, ``filled`` vs ``partially_filled`` mixed up.
- ``malformed_rows``: a row that cannot be read (bad number, unknown side, event or symbol).
- ``summary_mismatches``: ``summary.json``'s own counters differ from the replay (fills,
  cycles_closed, realized_pnl_quote, fees_quote, max_inventory_base, max_committed_quote).
  ``max_inventory_base`` is the most base the fills left the account: received (a buy's base
  commission deducted) minus sold.

Post-only placements that would have crossed cannot be checked without the order book: skipped.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, Final, TypeAlias

import numpy as np

from nutcracker.config import NutcrackerConfig, SymbolConfig, load_config
from nutcracker.errors import CheckInputError
from nutcracker.marketdata.candles import CandleArrays, load_candles_csv

FILLS_HEADER: Final = (
    "ts_ms",
    "symbol",
    "side",
    "price",
    "qty",
    "fee_quote",
    "client_order_id",
    "cycle_id",
    "liquidity",
    "fee_base",
    "fee_asset",
    "commission",
)
LEGACY_FILLS_HEADER: Final = FILLS_HEADER[:9]  # before commissions had an asset: all in quote
ORDERS_HEADER: Final = ("ts_ms", "symbol", "event", "side", "price", "qty", "client_order_id", "reason")
ORDER_EVENTS: Final = frozenset({"placed", "cancelled", "rejected", "partially_filled", "filled"})
FILL_EVENTS: Final = frozenset({"partially_filled", "filled"})

RULES: Final = (
    "rail_violations",
    "taker_fills",
    "out_of_range_fills",
    "cycles_below_min_profit",
    "unmatched_fills",
    "overfills",
    "oversells",
    "wrong_fees",
    "order_log_errors",
    "malformed_rows",
    "summary_mismatches",
)
MAX_EXAMPLES: Final = 5
SUMMARY_KEYS: Final = (
    "fills",
    "cycles_closed",
    "realized_pnl_quote",
    "fees_quote",
    "max_inventory_base",
    "max_committed_quote",
)

_EXACT: Final = Context(prec=100)
_ZERO: Final = Decimal(0)
_BPS: Final = Decimal(10_000)
_ID_LEVEL: Final = re.compile(r"-([BS])(\d+)-[0-9a-fA-F]+$")


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: where (symbol, time, order id / cycle / file line) and what."""

    rule: str
    symbol: str
    ts_ms: int
    ref: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.symbol} ts={self.ts_ms} {self.ref}: {self.detail}"


@dataclass(frozen=True, slots=True)
class SymbolTotals:
    """What the replay counted for one symbol (independently of the engine's summary)."""

    symbol: str
    fills: int
    buy_fills: int
    sell_fills: int
    orders_placed: int
    orders_rejected: int
    cycles_closed: int
    open_cycles: int
    realized_pnl_quote: Decimal  # net of fees, closed cycles only
    fees_quote: Decimal  # every fill's fee
    max_inventory_base: Decimal
    max_committed_quote: Decimal
    final_inventory_base: Decimal
    open_orders_at_end: int


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The checker's verdict: a count per rule (every rule present), the first few examples of
    each, and the replayed totals per symbol."""

    counts: Mapping[str, int]
    examples: Mapping[str, tuple[Finding, ...]]
    totals: Mapping[str, SymbolTotals]

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    @property
    def findings(self) -> int:
        return sum(self.counts.values())

    def count(self, rule: str) -> int:
        if rule not in self.counts:
            raise KeyError(f"unknown rule {rule!r}; rules are {', '.join(RULES)}")
        return self.counts[rule]

    def text(self) -> str:
        """Return a human-readable verdict: one line per rule, the examples below."""
        lines = ["backtest check: OK" if self.ok else f"backtest check: {self.findings} finding(s)"]
        for rule in RULES:
            lines.append(f"  {rule}: {self.counts[rule]}")
            lines += [f"    - {example}" for example in self.examples.get(rule, ())]
        for totals in self.totals.values():
            lines.append(
                f"  {totals.symbol}: {totals.fills} fills, {totals.cycles_closed} cycles closed, "
                f"realized {totals.realized_pnl_quote}, fees {totals.fees_quote}, "
                f"max inventory {totals.max_inventory_base}, max committed {totals.max_committed_quote}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (Decimals as strings)."""
        return {
            "ok": self.ok,
            "counts": dict(self.counts),
            "examples": {rule: [str(f) for f in found] for rule, found in self.examples.items() if found},
            "totals": {
                symbol: {
                    name: str(value) if isinstance(value, Decimal) else value
                    for name, value in (
                        (name, getattr(totals, name)) for name in SymbolTotals.__dataclass_fields__
                    )
                }
                for symbol, totals in self.totals.items()
            },
        }


class _Findings:
    def __init__(self) -> None:
        self.counts = dict.fromkeys(RULES, 0)
        self.examples: dict[str, list[Finding]] = {rule: [] for rule in RULES}

    def add(self, rule: str, symbol: str, ts_ms: int, ref: str, detail: str) -> None:
        self.counts[rule] += 1
        if len(self.examples[rule]) < MAX_EXAMPLES:
            self.examples[rule].append(Finding(rule, symbol, ts_ms, ref, detail))


# --------------------------------------------------------------------------------------------
# reading the files


@dataclass(frozen=True, slots=True)
class _FillRow:
    where: str  # file:line
    ts_ms: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    client_order_id: str
    cycle_id: str
    liquidity: str
    fee_base: Decimal = _ZERO  # base not received, a buy's commission in base
    fee_asset: str = ""  # "" (legacy file): the quote asset


@dataclass(frozen=True, slots=True)
class _OrderRow:
    where: str
    ts_ms: int
    symbol: str
    event: str
    side: str
    price: Decimal
    qty: Decimal
    client_order_id: str
    reason: str


def _read_rows(
    path: Path, header: Sequence[str], legacy: Sequence[str] | None = None
) -> Iterable[tuple[int, list[str]]]:
    if not path.is_file():
        raise CheckInputError(f"{path}: no such file; give the backtest's output directory")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is not None and legacy is not None and tuple(first) == tuple(legacy):
            header = legacy
        if first is None or tuple(first) != tuple(header):
            raise CheckInputError(f"{path}: header is {first!r}, expected {','.join(header)!r}")
        for row in reader:
            if row:
                yield reader.line_num, row


def _number(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text!r} is not finite")
    return value


def _positive(text: str, what: str) -> Decimal:
    value = _number(text, what)
    if value <= 0:
        raise ValueError(f"{what} {text!r} is not positive")
    return value


def _ts(text: str) -> int:
    if not re.fullmatch(r"-?[0-9]+", text):
        raise ValueError(f"ts_ms {text!r} is not an integer")
    return int(text)


def _side(text: str) -> str:
    if text not in ("buy", "sell"):
        raise ValueError(f"side {text!r} is neither buy nor sell")
    return text


def _read_fills(path: Path, symbols: Mapping[str, SymbolConfig], found: _Findings) -> list[_FillRow]:
    rows: list[_FillRow] = []
    for line, row in _read_rows(path, FILLS_HEADER, LEGACY_FILLS_HEADER):
        where = f"{path.name}:{line}"
        try:
            if len(row) not in (len(FILLS_HEADER), len(LEGACY_FILLS_HEADER)):
                raise ValueError(f"{len(row)} fields, expected {len(FILLS_HEADER)}")
            ts, symbol, side, price, qty, fee, coid, cycle_id, liquidity = row[:9]
            fee_base, fee_asset = (row[9], row[10]) if len(row) > 9 else ("0", "")
            if symbol not in symbols:
                raise ValueError(f"symbol {symbol!r} is not in the configuration")
            rows.append(
                _FillRow(
                    where,
                    _ts(ts),
                    symbol,
                    _side(side),
                    _positive(price, "price"),
                    _positive(qty, "qty"),
                    _number(fee, "fee_quote"),
                    coid,
                    cycle_id,
                    liquidity,
                    _number(fee_base, "fee_base"),
                    fee_asset,
                )
            )
        except ValueError as e:
            found.add("malformed_rows", row[1] if len(row) > 1 else "", 0, where, str(e))
    return rows


def _read_orders(path: Path, symbols: Mapping[str, SymbolConfig], found: _Findings) -> list[_OrderRow]:
    rows: list[_OrderRow] = []
    for line, row in _read_rows(path, ORDERS_HEADER):
        where = f"{path.name}:{line}"
        try:
            if len(row) != len(ORDERS_HEADER):
                raise ValueError(f"{len(row)} fields, expected {len(ORDERS_HEADER)}")
            ts, symbol, event, side, price, qty, coid, reason = row
            if symbol not in symbols:
                raise ValueError(f"symbol {symbol!r} is not in the configuration")
            if event not in ORDER_EVENTS:
                raise ValueError(f"event {event!r} is not one of {', '.join(sorted(ORDER_EVENTS))}")
            rows.append(
                _OrderRow(
                    where,
                    _ts(ts),
                    symbol,
                    event,
                    _side(side),
                    _number(price, "price"),
                    _number(qty, "qty"),
                    coid,
                    reason,
                )
            )
        except ValueError as e:
            found.add("malformed_rows", row[1] if len(row) > 1 else "", 0, where, str(e))
    return rows


# --------------------------------------------------------------------------------------------
# the replay of one symbol


@dataclass(slots=True)
class _Order:
    side: str
    price: Decimal
    qty: Decimal
    placed_ts_ms: int
    filled: Decimal = _ZERO
    state: str = "open"  # open, filled, cancelled, rejected


@dataclass(slots=True)
class _Lot:
    level: int | None  # the ladder level of the buy order's id; None when the id has none
    order: int  # creation order, to sort lots of unknown level
    lot_size: Decimal = Decimal(1)
    bought: Decimal = _ZERO
    received: Decimal = _ZERO  # bought less base commissions, plus dust joined
    sold: Decimal = _ZERO
    cost: Decimal = _ZERO  # the buys' notional plus the cost that came with dust joined

    @property
    def whole(self) -> Decimal:
        """Return the whole lots of what was received (base)."""
        return (self.received // self.lot_size) * self.lot_size

    @property
    def held(self) -> Decimal:
        return self.whole - self.sold


@dataclass(slots=True)
class _Cycle:
    lots: dict[int | None, _Lot] = field(default_factory=dict)
    cost: Decimal = _ZERO
    proceeds: Decimal = _ZERO
    fees: Decimal = _ZERO
    closed: bool = False

    @property
    def held(self) -> Decimal:
        return sum((lot.held for lot in self.lots.values()), _ZERO)


def _id_level(client_order_id: str) -> tuple[str, int] | None:
    """Return ("B"|"S", level) of an id ``{prefix}-B3-{seq}`` / ``-S3-``; None for ``-SP-`` or other."""
    m = _ID_LEVEL.search(client_order_id)
    return (m[1], int(m[2])) if m else None


class _Replay:
    """The life of every order and lot of one symbol, event by event."""

    def __init__(
        self,
        symbol: str,
        config: SymbolConfig,
        candles: CandleArrays | None,
        found: _Findings,
        allow_touch: bool,
    ) -> None:
        market = config.market
        self.symbol = symbol
        self.found = found
        self.allow_touch = allow_touch
        self.tick = market.tick_size
        self.quote_unit = market.tick_size * market.lot_size / Decimal(1_000_000)
        self.lot = market.lot_size
        self.base_unit = market.lot_size / Decimal(1_000_000)
        self.base_asset, _, self.quote_asset = symbol.partition("/")
        self.fee_bps = market.maker_fee_bps
        self.min_net_bps = config.profit.min_net_bps
        self.max_base = config.rails.max_base
        self.max_quote = config.rails.max_quote
        self.candles = candles
        self.orders: dict[str, _Order] = {}
        self.cycles: dict[str, _Cycle] = {}  # every cycle seen, by the fills' cycle_id
        self.open_cycles: dict[str, _Cycle] = {}
        self.lots_made = 0
        self.open_buy_qty = _ZERO
        self.open_buy_notional = _ZERO
        self.inventory = _ZERO  # the base our fills left the account: received minus sold
        self.dust = self.dust_cost = _ZERO  # base below a lot left by closed cycles, and its cost
        self.breached = {"base": False, "quote": False}
        # totals
        self.fills = self.buy_fills = self.sell_fills = 0
        self.placed = self.rejected = self.cycles_closed = 0
        self.realized = self.fees = _ZERO
        self.max_inventory = self.max_committed = _ZERO

    # -- events ----------------------------------------------------------------------------

    def order_event(self, row: _OrderRow, fill: _FillRow | None) -> None:
        coid, order = row.client_order_id, self.orders.get(row.client_order_id)
        if row.event == "placed":
            if order is not None:
                self._log_error(
                    row, f"placed again (first placed at {order.placed_ts_ms}, now {order.state})"
                )
                return
            if row.price <= 0 or row.qty <= 0:
                self.found.add(
                    "malformed_rows", self.symbol, row.ts_ms, row.where, "placed with price or qty <= 0"
                )
                return
            self.placed += 1
            self.orders[coid] = _Order(row.side, row.price, row.qty, row.ts_ms)
            if row.side == "buy":
                self.open_buy_qty += row.qty
                self.open_buy_notional += row.price * row.qty
            self._check_rails(row.ts_ms, coid, "placed")
        elif row.event == "rejected":
            if order is not None:
                self._log_error(row, f"rejected, but it was already placed ({order.state})")
                return
            self.rejected += 1
            self.orders[coid] = _Order(row.side, row.price, row.qty, row.ts_ms, state="rejected")
        elif row.event == "cancelled":
            if order is None or order.state != "open":
                state = "never placed" if order is None else order.state
                self._log_error(row, f"cancelled, but the order is not open ({state})")
                return
            remaining = order.qty - order.filled
            if row.qty != remaining:
                self._log_error(row, f"cancelled remainder {row.qty}, but {remaining} was open")
            self._close(order, "cancelled")
            self._check_rails(row.ts_ms, coid, "cancelled")
        else:  # a fill event
            if fill is None:
                self.found.add(
                    "unmatched_fills",
                    self.symbol,
                    row.ts_ms,
                    coid,
                    f"{row.where}: {row.event} event without its fill in fills.csv",
                )
                return
            if (fill.side, fill.price, fill.qty) != (row.side, row.price, row.qty):
                self.found.add(
                    "unmatched_fills",
                    self.symbol,
                    row.ts_ms,
                    coid,
                    f"{row.where} ({row.side} {row.qty} @ {row.price}) and {fill.where} "
                    f"({fill.side} {fill.qty} @ {fill.price}) disagree",
                )
            self.fill(fill, row)

    def fill(self, fill: _FillRow, event: _OrderRow | None) -> None:
        coid = fill.client_order_id
        self.fills += 1
        self.fees += fill.fee + fill.fee_base * fill.price  # a base commission valued at the fill price
        if fill.side == "buy":
            self.buy_fills += 1
        else:
            self.sell_fills += 1
        if event is None:
            self.found.add(
                "unmatched_fills",
                self.symbol,
                fill.ts_ms,
                coid,
                f"{fill.where}: no partially_filled/filled event for it in orders.csv",
            )
        self._check_candle(fill)
        self._check_fee(fill)
        order = self.orders.get(coid)
        if order is None:
            self.found.add("unmatched_fills", self.symbol, fill.ts_ms, coid, f"{fill.where}: no placed order")
        elif order.state != "open":
            self.found.add(
                "unmatched_fills", self.symbol, fill.ts_ms, coid, f"{fill.where}: the order is {order.state}"
            )
        elif order.side != fill.side or order.price != fill.price:
            self.found.add(
                "unmatched_fills",
                self.symbol,
                fill.ts_ms,
                coid,
                f"{fill.where}: fill {fill.side} @ {fill.price} of an order {order.side} @ {order.price}",
            )
        if order is not None and order.state == "open":
            self._fill_order(order, fill, event)
        if fill.side == "buy":
            self._book_buy(fill)
        else:
            self._book_sell(fill)
        self.max_inventory = max(self.max_inventory, self.inventory)
        self._check_rails(fill.ts_ms, coid, "filled")

    def _fill_order(self, order: _Order, fill: _FillRow, event: _OrderRow | None) -> None:
        remaining = order.qty - order.filled
        take = min(fill.qty, remaining)
        if fill.qty > remaining:
            self.found.add(
                "overfills",
                self.symbol,
                fill.ts_ms,
                fill.client_order_id,
                f"{fill.where}: fill of {fill.qty} but only {remaining} of {order.qty} was open "
                f"(filled {order.filled + fill.qty} in all)",
            )
        if order.side == "buy":
            self.open_buy_qty -= take
            self.open_buy_notional -= order.price * take
        order.filled += take
        done = order.filled >= order.qty
        if event is not None and (event.event == "filled") != done:
            left = order.qty - order.filled
            self._log_error(event, f"{event.event}, but {left} of {order.qty} is left")
        if done:
            order.state = "filled"

    def _close(self, order: _Order, state: str) -> None:
        if order.side == "buy":
            remaining = order.qty - order.filled
            self.open_buy_qty -= remaining
            self.open_buy_notional -= order.price * remaining
        order.state = state

    # -- inventory ---------------------------------------------------------------------------

    def _book_buy(self, fill: _FillRow) -> None:
        cycle = self.cycles.get(fill.cycle_id)
        if cycle is None or cycle.closed:
            if cycle is not None:
                self._fill_error(fill, f"cycle {fill.cycle_id!r} bought again after it closed")
            cycle = self.cycles[fill.cycle_id] = self.open_cycles[fill.cycle_id] = _Cycle()
        parsed = _id_level(fill.client_order_id)
        level = parsed[1] if parsed is not None and parsed[0] == "B" else None
        lot = cycle.lots.get(level)
        if lot is None:
            lot = cycle.lots[level] = _Lot(level, self.lots_made, self.lot)
            self.lots_made += 1
        notional = fill.price * fill.qty
        received = fill.qty - fill.fee_base
        if self.dust >= self.lot:  # the dust's whole lots join this lot, with their share of its cost
            whole = (self.dust // self.lot) * self.lot
            moved = _floor_to(self.dust_cost * whole / self.dust, self.quote_unit)
            received += whole
            notional += moved
            self.dust -= whole
            self.dust_cost -= moved
        lot.bought += fill.qty
        lot.received += received
        lot.cost += notional
        cycle.fees += fill.fee
        self.inventory += fill.qty - fill.fee_base

    def _book_sell(self, fill: _FillRow) -> None:
        cycle = self.cycles.get(fill.cycle_id)
        held = cycle.held if cycle is not None and not cycle.closed else _ZERO
        if cycle is None or cycle.closed or fill.qty > held:
            self.found.add(
                "oversells",
                self.symbol,
                fill.ts_ms,
                fill.client_order_id,
                f"{fill.where}: sells {fill.qty} of cycle {fill.cycle_id!r}, which holds {held}",
            )
        take = min(fill.qty, held)
        self.inventory -= fill.qty  # the account's inventory, oversold or not
        if cycle is None or cycle.closed:
            return
        parsed = _id_level(fill.client_order_id)
        lots = sorted(
            (lot for lot in cycle.lots.values() if lot.held > 0),
            key=lambda lot: (lot.level is None, lot.level or 0, lot.order),
        )
        if parsed is not None and parsed[0] == "S" and parsed[1] in cycle.lots:
            first = cycle.lots[parsed[1]]
            lots = [first, *(lot for lot in lots if lot is not first)]
        left = take
        for lot in lots:
            part = min(left, lot.held)
            lot.sold += part
            left -= part
        cycle.proceeds += fill.price * fill.qty
        cycle.fees += fill.fee + fill.fee_base * fill.price
        if cycle.held == 0:
            del self.open_cycles[fill.cycle_id]
            self._close_cycle(fill, cycle)

    def _close_cycle(self, fill: _FillRow, cycle: _Cycle) -> None:
        cycle.closed = True
        for lot in cycle.lots.values():  # the cost of the whole lots sold; the dust takes the rest
            sellable = (
                _ceil_to(lot.cost * lot.whole / lot.received, self.quote_unit) if lot.received else _ZERO
            )
            cycle.cost += sellable
            self.dust += lot.received - lot.sold
            self.dust_cost += lot.cost - sellable
        self.cycles_closed += 1
        net = cycle.proceeds - cycle.cost - cycle.fees
        self.realized += net
        if net * _BPS < self.min_net_bps * cycle.cost:
            need = self.min_net_bps * cycle.cost / _BPS
            self.found.add(
                "cycles_below_min_profit",
                self.symbol,
                fill.ts_ms,
                f"cycle {fill.cycle_id}",
                f"net {net} (proceeds {cycle.proceeds} - cost {cycle.cost} - fees {cycle.fees}) is below "
                f"min_net_bps {self.min_net_bps} of the cost: {need}",
            )

    def held_cost(self) -> Decimal:
        """Return the cost of the held lots, each floored to the quote unit (as the engine counts),
        and of the dust below a lot that closed cycles left."""
        total = self.dust_cost
        for cycle in self.open_cycles.values():
            for lot in cycle.lots.values():
                if lot.held > 0 and lot.received > 0:
                    total += (lot.cost * lot.held) // (lot.received * self.quote_unit) * self.quote_unit
        return total

    # -- checks ------------------------------------------------------------------------------

    def _check_rails(self, ts_ms: int, ref: str, what: str) -> None:
        held = sum((c.held for c in self.open_cycles.values()), _ZERO)
        base = held + self.open_buy_qty
        quote = self.held_cost() + self.open_buy_notional
        self.max_committed = max(self.max_committed, quote)
        for rail, value, limit, unit in (
            ("base", base, self.max_base, "whole lots held + open buys"),
            ("quote", quote, self.max_quote, "cost of held lots + open buy notional"),
        ):
            beyond = value > limit
            if beyond and not self.breached[rail]:
                self.found.add(
                    "rail_violations",
                    self.symbol,
                    ts_ms,
                    ref,
                    f"after {what}: {unit} = {value} > rails.max_{rail} {limit}",
                )
            self.breached[rail] = beyond

    def _check_candle(self, fill: _FillRow) -> None:
        candles = self.candles
        if candles is None:  # the caller ensures candles for every symbol that has fills
            return
        i = int(np.searchsorted(candles.ts_ms, fill.ts_ms, side="right")) - 1
        if i < 0 or fill.ts_ms >= int(candles.ts_ms[i]) + candles.interval_ms:
            self.found.add(
                "out_of_range_fills",
                self.symbol,
                fill.ts_ms,
                fill.client_order_id,
                f"{fill.where}: no candle contains ts {fill.ts_ms}",
            )
            return
        low = Decimal(int(candles.low[i])) * self.tick
        high = Decimal(int(candles.high[i])) * self.tick
        candle = f"candle {int(candles.ts_ms[i])} (low {low}, high {high})"
        if fill.price < low or fill.price > high:
            self.found.add(
                "out_of_range_fills",
                self.symbol,
                fill.ts_ms,
                fill.client_order_id,
                f"{fill.where}: {fill.side} @ {fill.price} outside {candle}",
            )
        if fill.liquidity != "maker":
            self.found.add(
                "taker_fills",
                self.symbol,
                fill.ts_ms,
                fill.client_order_id,
                f"{fill.where}: liquidity {fill.liquidity!r}, not maker",
            )
            return
        if fill.side == "buy":
            traded_through = low <= fill.price if self.allow_touch else low < fill.price
            rule = "low <= price" if self.allow_touch else "low < price"
        else:
            traded_through = high >= fill.price if self.allow_touch else high > fill.price
            rule = "high >= price" if self.allow_touch else "high > price"
        if not traded_through:
            self.found.add(
                "taker_fills",
                self.symbol,
                fill.ts_ms,
                fill.client_order_id,
                f"{fill.where}: maker {fill.side} @ {fill.price} needs {rule} in {candle}",
            )

    def _check_fee(self, fill: _FillRow) -> None:
        rate = self.fee_bps / _BPS
        asset = fill.fee_asset
        if fill.fee_base or asset == self.base_asset:  # taken from the base a buy received
            exact = fill.qty * rate
            ok = fill.side == "buy" and not fill.fee and _charged(fill.fee_base, exact, self.base_unit)
            what = f"fee_base {fill.fee_base} {asset or self.base_asset} (fee_quote {fill.fee})"
        elif asset in ("", self.quote_asset):
            exact = fill.price * fill.qty * rate
            ok = _charged(fill.fee, exact, self.quote_unit)
            what = f"fee {fill.fee}"
        else:  # a third asset (BNB): valued at the fee rate of the notional
            exact = fill.price * fill.qty * rate
            ok = fill.fee == exact
            what = f"fee {fill.fee} valuing a commission in {asset}"
        if not ok:
            self.found.add(
                "wrong_fees",
                self.symbol,
                fill.ts_ms,
                fill.client_order_id,
                f"{fill.where}: {fill.side} {what}, maker fee of {fill.price} x {fill.qty} is {exact}",
            )

    def _log_error(self, row: _OrderRow, text: str) -> None:
        self.found.add(
            "order_log_errors", self.symbol, row.ts_ms, row.client_order_id, f"{row.where}: {text}"
        )

    def _fill_error(self, fill: _FillRow, text: str) -> None:
        self.found.add(
            "order_log_errors", self.symbol, fill.ts_ms, fill.client_order_id, f"{fill.where}: {text}"
        )

    def totals(self) -> SymbolTotals:
        return SymbolTotals(
            symbol=self.symbol,
            fills=self.fills,
            buy_fills=self.buy_fills,
            sell_fills=self.sell_fills,
            orders_placed=self.placed,
            orders_rejected=self.rejected,
            cycles_closed=self.cycles_closed,
            open_cycles=len(self.open_cycles),
            realized_pnl_quote=self.realized,
            fees_quote=self.fees,
            max_inventory_base=self.max_inventory,
            max_committed_quote=self.max_committed,
            final_inventory_base=self.inventory,
            open_orders_at_end=sum(1 for order in self.orders.values() if order.state == "open"),
        )


_COMMISSION_STEP: Final = Decimal("1e-8")  # Binance's commission precision


def _floor_to(value: Decimal, unit: Decimal) -> Decimal:
    return (value / unit).to_integral_value(ROUND_FLOOR) * unit


def _ceil_to(value: Decimal, unit: Decimal) -> Decimal:
    return (value / unit).to_integral_value(ROUND_CEILING) * unit


def _charged(fee: Decimal, exact: Decimal, unit: Decimal) -> bool:
    """Return whether ``fee`` is the exact commission, or it rounded up to 8 decimals then the unit."""
    return fee == exact or fee == _ceil_to(_ceil_to(exact, _COMMISSION_STEP), unit)


_Step: TypeAlias = tuple[int, int, int, _OrderRow | None, _FillRow | None]  # ts, kind, index, event, fill


def _replay_symbol(replay: _Replay, orders: list[_OrderRow], fills: list[_FillRow]) -> None:
    """Pair each fill event of ``orders.csv`` with the next fill of that id in ``fills.csv``, then
    replay the order log (stably sorted by time); fills without an event go in at their time."""
    pending: dict[str, deque[_FillRow]] = {}
    for fill in fills:
        pending.setdefault(fill.client_order_id, deque()).append(fill)
    timeline: list[_Step] = []
    for i, row in enumerate(orders):
        paired: _FillRow | None = None
        if row.event in FILL_EVENTS:
            queue = pending.get(row.client_order_id)
            paired = queue.popleft() if queue else None
        timeline.append((row.ts_ms, 0, i, row, paired))
    leftovers = sorted((fill for queue in pending.values() for fill in queue), key=lambda f: f.ts_ms)
    timeline += [(fill.ts_ms, 1, j, None, fill) for j, fill in enumerate(leftovers)]
    timeline.sort(key=lambda step: step[:3])
    for _, _, _, event, step_fill in timeline:
        if event is not None:
            replay.order_event(event, step_fill)
        elif step_fill is not None:
            replay.fill(step_fill, None)


# --------------------------------------------------------------------------------------------
# summary.json


def _same(ours: Decimal | int, theirs: object) -> bool:
    if isinstance(theirs, bool):
        return False
    if isinstance(theirs, int):
        return Decimal(theirs) == ours
    if isinstance(theirs, float):
        return math.isclose(float(ours), theirs, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(theirs, str):
        try:
            return Decimal(theirs) == ours
        except InvalidOperation:
            return False
    return False


def _compare_summary(
    summary: Mapping[str, Any], totals: Mapping[str, SymbolTotals], found: _Findings
) -> None:
    sections: dict[str, Mapping[str, Any]] = {}
    per_symbol = summary.get("symbols")
    if isinstance(per_symbol, Mapping):
        sections = {str(k): v for k, v in per_symbol.items() if isinstance(v, Mapping)}
    elif len(totals) == 1:
        sections = {next(iter(totals)): summary}
    for symbol, section in sections.items():
        if symbol not in totals:
            found.add("summary_mismatches", symbol, 0, "summary.json", "a symbol the replay does not know")
            continue
        ours = totals[symbol]
        for key in SUMMARY_KEYS:
            if key not in section:
                continue
            value: Decimal | int = getattr(ours, key)
            if not _same(value, section[key]):
                found.add(
                    "summary_mismatches",
                    symbol,
                    0,
                    "summary.json",
                    f"{key} is {section[key]!r}, the replay of fills.csv/orders.csv gives {value}",
                )


# --------------------------------------------------------------------------------------------
# entry points


def check_records(
    config: NutcrackerConfig,
    candles: Mapping[str, CandleArrays],
    fills_csv: Path,
    orders_csv: Path,
    summary: Mapping[str, Any] | None = None,
    *,
    allow_touch: bool = False,
) -> CheckReport:
    """Return the checks of one backtest's ``fills_csv`` and ``orders_csv``.

    ``candles`` maps each symbol (``BTC/USDT``) to its candles; every symbol with fills needs them.
    ``summary`` (the run's ``summary.json``), when given, is compared with the replay.
    ``allow_touch`` accepts fills at a candle's extreme (``low == price``): for backtests driven by
    trade prints, where a print at the order's price may fill it; candle-only backtests never do.

    Raises:
        CheckInputError: a file is missing or has the wrong header, or a symbol has no candles.
    """
    by_symbol = {symbol.market.symbol: symbol for symbol in config.symbol}
    found = _Findings()
    with localcontext(_EXACT):
        fills = _read_fills(fills_csv, by_symbol, found)
        orders = _read_orders(orders_csv, by_symbol, found)
        totals: dict[str, SymbolTotals] = {}
        for symbol, symbol_config in by_symbol.items():
            symbol_fills = [fill for fill in fills if fill.symbol == symbol]
            if symbol_fills and symbol not in candles:
                raise CheckInputError(
                    f"{symbol} has {len(symbol_fills)} fills but no candles were given; pass its candle file"
                )
            replay = _Replay(symbol, symbol_config, candles.get(symbol), found, allow_touch)
            _replay_symbol(replay, [row for row in orders if row.symbol == symbol], symbol_fills)
            totals[symbol] = replay.totals()
        if summary is not None:
            _compare_summary(summary, totals, found)
    examples = {rule: tuple(found.examples[rule]) for rule in RULES}
    return CheckReport(dict(found.counts), examples, totals)


def check_backtest(
    out_dir: Path,
    config_path: Path,
    data_paths: Mapping[str, Path],
    *,
    allow_touch: bool = False,
) -> CheckReport:
    """Return the checks of the backtest written to ``out_dir`` (``fills.csv``, ``orders.csv`` and,
    when present, ``summary.json``), run with the config at ``config_path`` over the candle files
    ``data_paths`` (symbol -> path, e.g. ``{"BTC/USDT": Path("binance_BTC-USDT_1m.csv.gz")}``).

    Raises:
        ConfigError: the configuration is invalid.
        DataError: a candle file is malformed.
        CheckInputError: an output file is missing or has the wrong header, or candles are missing.
    """
    config = load_config(config_path)
    markets = {symbol.market.symbol: symbol.market for symbol in config.symbol}
    candles: dict[str, CandleArrays] = {}
    for symbol, path in data_paths.items():
        if symbol not in markets:
            raise CheckInputError(
                f"candles given for {symbol}, which {config_path} does not configure; "
                f"symbols there: {', '.join(markets)}"
            )
        candles[symbol] = load_candles_csv(path, markets[symbol].precision, symbol=symbol)
    summary_path = Path(out_dir) / "summary.json"
    summary: Mapping[str, Any] | None = None
    if summary_path.is_file():
        loaded = json.loads(summary_path.read_text(encoding="utf-8"))
        summary = loaded if isinstance(loaded, dict) else None
    return check_records(
        config,
        candles,
        Path(out_dir) / "fills.csv",
        Path(out_dir) / "orders.csv",
        summary,
        allow_touch=allow_touch,
    )


__all__ = [
    "FILLS_HEADER",
    "LEGACY_FILLS_HEADER",
    "MAX_EXAMPLES",
    "ORDERS_HEADER",
    "RULES",
    "SUMMARY_KEYS",
    "CheckReport",
    "Finding",
    "SymbolTotals",
    "check_backtest",
    "check_records",
]
