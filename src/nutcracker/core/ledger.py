"""The lot and cycle ledger: inventory bought by the engine and the buy-to-sell cycles it closes.

A *lot* is the inventory one ladder level bought. A *cycle* closes when the inventory it
bought is sold: one lot in per-lot mode (grid), every lot of the sequence in pooled mode
(martingale). Realized PnL is exact, net of both maker fees, in quote units.

Commissions are booked in the asset the exchange took them in (``model.Fill``). A buy whose
commission was taken in base leaves the lot holding what the account received, ``received`` base
units (bu), of which only whole lots can be sold: the lot's exit sells ``held`` whole lots and
never asks for base the account does not hold. What a closed cycle leaves below one lot is the
ledger's ``dust`` (bu) and it takes its share of the lot's cost along (``dust_cost``: the cycle
counts only the cost of what it could sell, rounded up); once the dust adds up to whole lots they
join the next lot bought, with their share of that cost, and its exit sells them. The quote rail
counts the dust's cost as held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from nutcracker.core.model import Fill, Side
from nutcracker.core.orders import is_seed
from nutcracker.core.units import BU_PER_LOT, PPM, QU_PER_TICK_LOT, ceil_div, notional_qu


@dataclass(slots=True, init=False, unsafe_hash=True)
class Lot:
    level: Final[int]
    cycle_id: Final[int]
    price: Final[int]  # ticks of the first buy fill
    bought: Final[int]  # lots ordered and filled
    received: Final[int]  # bu: what the account received (bought less base fees, plus dust joined)
    sold: Final[int]  # lots
    cost: Final[int]  # qu: notional of the buys
    joined_cost: Final[int]  # qu: the cost that came with the dust of earlier cycles joined to it
    buy_fees: Final[int]  # qu: paid in quote or valued (a base fee shows in ``received`` instead)
    proceeds: Final[int]  # qu: notional of the sells so far
    sell_fees: Final[int]  # qu
    opened_ts_ms: Final[int]

    def __init__(
        self,
        level: int,
        cycle_id: int,
        price: int,
        bought: int,
        received: int,
        sold: int,
        cost: int,
        joined_cost: int,
        buy_fees: int,
        proceeds: int,
        sell_fees: int,
        opened_ts_ms: int,
    ) -> None:
        self.level = level
        self.cycle_id = cycle_id
        self.price = price
        self.bought = bought
        self.received = received
        self.sold = sold
        self.cost = cost
        self.joined_cost = joined_cost
        self.buy_fees = buy_fees
        self.proceeds = proceeds
        self.sell_fees = sell_fees
        self.opened_ts_ms = opened_ts_ms

    @property
    def held(self) -> int:
        """Return the whole lots this lot can still sell (of what the account received)."""
        return self.received // BU_PER_LOT - self.sold

    @property
    def held_cost(self) -> int:
        """Return the cost of the lots still held (floor), for the quote rail."""
        cost = self.cost + self.joined_cost
        return cost * self.held * BU_PER_LOT // self.received if self.received > 0 else 0

    @property
    def sellable_cost(self) -> int:
        """Return the cost (qu, rounded up) of the whole lots received; the rest goes with the dust."""
        whole = self.received - self.received % BU_PER_LOT
        return ceil_div((self.cost + self.joined_cost) * whole, self.received) if self.received > 0 else 0

    @property
    def left_bu(self) -> int:
        """Return the base units received and not sold: ``held`` lots and the dust below a lot."""
        return self.received - self.sold * BU_PER_LOT

    # Explicit constructors rather than ``dataclasses.replace``, which runs interpreted.

    def with_buy(self, qty: int, received: int, notional: int, joined_cost: int, fee: int) -> Lot:
        """Return this lot after buying ``qty`` more lots, of which ``received`` bu arrived."""
        return Lot(
            self.level,
            self.cycle_id,
            self.price,
            self.bought + qty,
            self.received + received,
            self.sold,
            self.cost + notional,
            self.joined_cost + joined_cost,
            self.buy_fees + fee,
            self.proceeds,
            self.sell_fees,
            self.opened_ts_ms,
        )

    def with_sell(self, qty: int, proceeds: int, fee: int) -> Lot:
        """Return this lot after selling ``qty`` of its lots."""
        return Lot(
            self.level,
            self.cycle_id,
            self.price,
            self.bought,
            self.received,
            self.sold + qty,
            self.cost,
            self.joined_cost,
            self.buy_fees,
            self.proceeds + proceeds,
            self.sell_fees + fee,
            self.opened_ts_ms,
        )


@dataclass(slots=True, init=False, unsafe_hash=True)
class ClosedCycle:
    cycle_id: Final[int]
    cost: Final[int]  # qu
    proceeds: Final[int]  # qu
    fees: Final[int]  # qu
    pnl: Final[int]  # qu, net of fees
    opened_ts_ms: Final[int]
    closed_ts_ms: Final[int]

    def __init__(
        self,
        cycle_id: int,
        cost: int,
        proceeds: int,
        fees: int,
        pnl: int,
        opened_ts_ms: int,
        closed_ts_ms: int,
    ) -> None:
        self.cycle_id = cycle_id
        self.cost = cost
        self.proceeds = proceeds
        self.fees = fees
        self.pnl = pnl
        self.opened_ts_ms = opened_ts_ms
        self.closed_ts_ms = closed_ts_ms


@dataclass(slots=True, init=False, unsafe_hash=True)
class Ledger:
    lots: Final[tuple[Lot, ...]]  # sorted by level
    next_cycle_id: Final[int]
    sequence_cycle_id: Final[int]  # pooled mode: the cycle every lot of the running sequence joins (0: none)
    cycles_closed: Final[int]
    realized_pnl: Final[int]  # qu
    fees_paid: Final[int]  # qu: every commission valued in quote (a base fee at its fill's price)
    last_buy_fill_ts_ms: Final[int]
    last_sell_fill_ts_ms: Final[int]
    dust: Final[int]  # bu: base of closed cycles below one lot, not yet joined to a lot
    dust_cost: Final[int]  # qu: the cost that came with the dust

    def __init__(
        self,
        lots: tuple[Lot, ...] = (),
        next_cycle_id: int = 1,
        sequence_cycle_id: int = 0,
        cycles_closed: int = 0,
        realized_pnl: int = 0,
        fees_paid: int = 0,
        last_buy_fill_ts_ms: int = -1,
        last_sell_fill_ts_ms: int = -1,
        dust: int = 0,
        dust_cost: int = 0,
    ) -> None:
        self.lots = lots
        self.next_cycle_id = next_cycle_id
        self.sequence_cycle_id = sequence_cycle_id
        self.cycles_closed = cycles_closed
        self.realized_pnl = realized_pnl
        self.fees_paid = fees_paid
        self.last_buy_fill_ts_ms = last_buy_fill_ts_ms
        self.last_sell_fill_ts_ms = last_sell_fill_ts_ms
        self.dust = dust
        self.dust_cost = dust_cost

    @property
    def held(self) -> int:
        return sum(lot.held for lot in self.lots)

    @property
    def held_cost(self) -> int:
        """Return the cost of what is held, for the quote rail: the lots' whole lots and the dust."""
        return sum(lot.held_cost for lot in self.lots) + self.dust_cost


@dataclass(slots=True, init=False, unsafe_hash=True)
class Booking:
    """Where one fill went: the cycle it opened, added to or closed."""

    trade_id: Final[str]
    cycle_id: Final[int]

    def __init__(self, trade_id: str, cycle_id: int) -> None:
        self.trade_id = trade_id
        self.cycle_id = cycle_id


def min_sell_price(lots: Sequence[Lot], fee_ppm: int, min_profit_ppm: int, fee_round_qu: int = 0) -> int:
    """Return the lowest price (ticks) at which selling every held lot nets the minimum profit.

    Net profit = proceeds - sell fees - cost - buy fees >= min_profit x cost, counting what
    was already sold of these lots. Net of both fees in whatever asset they were paid: a buy fee
    in quote (or a third asset's, valued) is in ``buy_fees``; one taken in base left fewer lots
    ``held`` to recover the cost from (the cost of the dust below a lot goes with it to a later
    lot: ``Lot.sellable_cost``); the sell's fee, in quote or valued at the same rate in a third
    asset, is ``fee_ppm`` of the proceeds plus ``fee_round_qu``, what the exchange's rounding of
    the commission up to its precision may add. Exact integer arithmetic, rounded up to the next
    tick.
    """
    cost = buy_fees = sell_fees = proceeds = held = 0
    for lot in lots:
        cost += lot.sellable_cost
        buy_fees += lot.buy_fees
        sell_fees += lot.sell_fees
        proceeds += lot.proceeds
        held += lot.held
    if held <= 0:
        raise ValueError("min_sell_price needs lots with inventory")
    # p * held * (PPM - fee) * QU/PPM >= cost + fees - proceeds + cost * min_profit / PPM, scaled by PPM
    need = PPM * (cost + buy_fees + sell_fees + fee_round_qu - proceeds) + cost * min_profit_ppm
    per_tick = held * (PPM - fee_ppm) * QU_PER_TICK_LOT
    return max(1, ceil_div(need, per_tick))


def book_fill(
    ledger: Ledger, fill: Fill, level: int, pooled: bool
) -> tuple[Ledger, Booking, ClosedCycle | None]:
    """Return the ledger after one of our fills on ladder ``level`` (-1: the pooled exit).

    A seeded level's lot (``orders.is_seed``) is never pooled: it opens a cycle of its own.
    """
    pooled = pooled and not is_seed(level)
    if fill.side is Side.BUY:
        return _book_buy(ledger, fill, level, pooled)
    return _book_sell(ledger, fill, level, pooled)


def _book_buy(ledger: Ledger, fill: Fill, level: int, pooled: bool) -> tuple[Ledger, Booking, None]:
    notional = notional_qu(fill.price, fill.qty)
    received = fill.qty * BU_PER_LOT - fill.fee_base
    dust, dust_cost = ledger.dust, ledger.dust_cost
    if dust >= BU_PER_LOT:  # the dust's whole lots join this lot with their cost, sold by its exit
        whole = dust - dust % BU_PER_LOT
        joined = dust_cost * whole // dust
        received += whole
        dust, dust_cost = dust - whole, dust_cost - joined
    else:
        joined = 0
    lots = list(ledger.lots)
    next_cycle_id, sequence_cycle_id = ledger.next_cycle_id, ledger.sequence_cycle_id
    for i, lot in enumerate(lots):
        if lot.level == level:
            lots[i] = lot.with_buy(fill.qty, received, notional, joined, fill.fee)
            cycle_id = lot.cycle_id
            break
    else:
        if pooled and sequence_cycle_id:
            cycle_id = sequence_cycle_id
        else:
            cycle_id, next_cycle_id = next_cycle_id, next_cycle_id + 1
            if pooled:
                sequence_cycle_id = cycle_id
        lots.append(
            Lot(
                level,
                cycle_id,
                fill.price,
                fill.qty,
                received,
                0,
                notional,
                joined,
                fill.fee,
                0,
                0,
                fill.ts_ms,
            )
        )
        lots.sort(key=lambda lot: lot.level)
    new = Ledger(
        tuple(lots),
        next_cycle_id,
        sequence_cycle_id,
        ledger.cycles_closed,
        ledger.realized_pnl,
        ledger.fees_paid + fill.fee_value,
        max(ledger.last_buy_fill_ts_ms, fill.ts_ms),
        ledger.last_sell_fill_ts_ms,
        dust,
        dust_cost,
    )
    return new, Booking(fill.trade_id, cycle_id), None


def _book_sell(
    ledger: Ledger, fill: Fill, level: int, pooled: bool
) -> tuple[Ledger, Booking, ClosedCycle | None]:
    lots = list(ledger.lots)
    # a pooled exit sells the sequence, never a seeded lot (it has its own exit and cycle)
    targets = [
        i
        for i, lot in enumerate(lots)
        if lot.held > 0 and ((pooled and not is_seed(lot.level)) or lot.level == level)
    ]
    if not targets:
        raise ValueError(f"sell fill {fill.trade_id} closes no held lot (level {level})")
    left, fee = fill.qty, fill.fee_value  # Binance never takes a sell's commission in base
    for i in targets:  # pooled: lowest level first; the whole fee goes to the first lot touched
        take = min(left, lots[i].held)
        if take == 0:
            break
        lot = lots[i]
        lots[i] = lot.with_sell(take, notional_qu(fill.price, take), fee)
        left, fee = left - take, 0
    dust, dust_cost = ledger.dust, ledger.dust_cost
    if left:
        raise ValueError(f"sell fill {fill.trade_id} of {fill.qty} lots exceeds the engine's inventory")
    cycle_id = lots[targets[0]].cycle_id
    group = [lot for lot in lots if lot.cycle_id == cycle_id]
    fees_paid = ledger.fees_paid + fill.fee_value
    last_sell = max(ledger.last_sell_fill_ts_ms, fill.ts_ms)
    if any(lot.held for lot in group):
        new = Ledger(
            tuple(lots),
            ledger.next_cycle_id,
            ledger.sequence_cycle_id,
            ledger.cycles_closed,
            ledger.realized_pnl,
            fees_paid,
            ledger.last_buy_fill_ts_ms,
            last_sell,
            dust,
            dust_cost,
        )
        return new, Booking(fill.trade_id, cycle_id), None
    cost = sum(lot.sellable_cost for lot in group)
    proceeds = sum(lot.proceeds for lot in group)
    fees = sum(lot.buy_fees + lot.sell_fees for lot in group)
    closed = ClosedCycle(
        cycle_id,
        cost,
        proceeds,
        fees,
        proceeds - cost - fees,
        min(lot.opened_ts_ms for lot in group),
        fill.ts_ms,
    )
    remaining = tuple(lot for lot in lots if lot.cycle_id != cycle_id)
    dust += sum(lot.left_bu for lot in group)
    dust_cost += sum(lot.cost + lot.joined_cost for lot in group) - cost
    new = Ledger(
        remaining,
        ledger.next_cycle_id,
        0 if ledger.sequence_cycle_id == cycle_id else ledger.sequence_cycle_id,
        ledger.cycles_closed + 1,
        ledger.realized_pnl + closed.pnl,
        fees_paid,
        ledger.last_buy_fill_ts_ms,
        last_sell,
        dust,
        dust_cost,
    )
    return new, Booking(fill.trade_id, cycle_id), closed
