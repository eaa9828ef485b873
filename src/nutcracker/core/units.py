"""Exact units of the core: integer ticks, lots and quote units.

A price is an integer number of ticks, a quantity an integer number of lots. Money is an
integer number of *quote units* (qu): one tick·lot is ``QU_PER_TICK_LOT`` qu, so a maker fee
given in parts per million is exact too (``fee_qu = price * qty * fee_ppm``). Base amounts below
a lot (a buy's commission taken in base, the dust it leaves) are integer *base units* (bu):
``BU_PER_LOT`` per lot, so a base fee ``qty * fee_ppm`` bu is exact too, and a bu at ``price`` ticks
is worth exactly ``price`` qu (``BU_PER_LOT == QU_PER_TICK_LOT``). Decimals live only at the edges
(config, exchange adapters, reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

QU_PER_TICK_LOT = 1_000_000
PPM = 1_000_000
BU_PER_LOT = QU_PER_TICK_LOT  # equal, so base_value_qu is a product


def notional_qu(price: int, qty: int) -> int:
    """Return the notional of ``qty`` lots at ``price`` ticks in quote units."""
    return price * qty * QU_PER_TICK_LOT


def fee_qu(price: int, qty: int, fee_ppm: int) -> int:
    """Return the exact fee in quote units of a fill."""
    return price * qty * fee_ppm


def fee_bu(qty: int, fee_ppm: int) -> int:
    """Return the exact fee in base units of a buy of ``qty`` lots charged in base."""
    return qty * fee_ppm


def base_value_qu(price: int, bu: int) -> int:
    """Return what ``bu`` base units are worth at ``price`` ticks, in quote units (exact)."""
    return price * bu


COMMISSION_STEP = Decimal("1e-8")  # Binance's commission precision: charged amounts round up to it


def commission_round_qu(precision: Precision) -> int:
    """Return the most (qu) rounding a quote commission up to ``COMMISSION_STEP`` can add."""
    return int((COMMISSION_STEP / precision.quote_unit).to_integral_value(rounding=ROUND_CEILING))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Precision:
    """The exchange grid of one market, converting between Decimals and integer units."""

    tick: Decimal
    lot: Decimal

    @property
    def quote_unit(self) -> Decimal:
        return self.tick * self.lot / QU_PER_TICK_LOT

    def price_to_ticks(self, price: Decimal, rounding: str = ROUND_FLOOR) -> int:
        return int((price / self.tick).to_integral_value(rounding=rounding))

    def qty_to_lots(self, qty: Decimal, rounding: str = ROUND_FLOOR) -> int:
        return int((qty / self.lot).to_integral_value(rounding=rounding))

    def quote_to_qu(self, quote: Decimal, rounding: str = ROUND_FLOOR) -> int:
        return int((quote / self.quote_unit).to_integral_value(rounding=rounding))

    def ticks_to_price(self, ticks: int) -> Decimal:
        return ticks * self.tick

    def lots_to_qty(self, lots: int) -> Decimal:
        return lots * self.lot

    def qu_to_quote(self, qu: int) -> Decimal:
        return qu * self.quote_unit

    @property
    def base_unit(self) -> Decimal:
        return self.lot / BU_PER_LOT

    def base_to_bu(self, amount: Decimal, rounding: str = ROUND_CEILING) -> int:
        """Return a base amount in base units, rounded up by default (a fee: we hold no more)."""
        return int((amount / self.base_unit).to_integral_value(rounding=rounding))

    def bu_to_base(self, bu: int) -> Decimal:
        return bu * self.base_unit

    def exact_ticks(self, price: Decimal) -> int:
        """Return ``price`` in ticks, refusing a price off the tick grid."""
        ticks = price / self.tick
        if ticks != ticks.to_integral_value():
            raise ValueError(f"price {price} is not a multiple of tick {self.tick}")
        return int(ticks)


__all__ = [
    "BU_PER_LOT",
    "COMMISSION_STEP",
    "PPM",
    "QU_PER_TICK_LOT",
    "ROUND_CEILING",
    "ROUND_FLOOR",
    "Precision",
    "base_value_qu",
    "ceil_div",
    "commission_round_qu",
    "fee_bu",
    "fee_qu",
    "notional_qu",
]
