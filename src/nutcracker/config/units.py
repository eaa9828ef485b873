"""Exact units: the config's Decimals as the core's integers, refusing any value the conversion rounds."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Final

from nutcracker.config.problems import _fmt, _Problems

if TYPE_CHECKING:
    from nutcracker.config.schema import MarketConfig

_BPS_PER_UNIT: Final = Decimal(10_000)


class _ExactUnits:
    """Convert Decimals to integer units, recording every value the conversion would round."""

    def __init__(self, market: MarketConfig) -> None:
        self._market = market
        self._precision = market.precision
        self.problems = _Problems()

    def lots(self, field: str, qty: Decimal) -> int:
        lots = self._precision.qty_to_lots(qty)
        if self._precision.lots_to_qty(lots) != qty:
            lot = self._market.lot_size
            self.problems.add(
                field,
                f"{_fmt(qty)} {self._market.base} is not a multiple of market.lot_size {_fmt(lot)}; "
                f"use e.g. {_fmt(lots * lot)} or {_fmt((lots + 1) * lot)}",
            )
        return lots

    def quote_units(self, field: str, amount: Decimal) -> int:
        units = self._precision.quote_to_qu(amount)
        if self._precision.qu_to_quote(units) != amount:
            unit = self._precision.quote_unit
            self.problems.add(
                field,
                f"{_fmt(amount)} {self._market.quote} is finer than the smallest quote unit {unit:E} "
                f"(tick_size × lot_size / 1e6); round it to e.g. {_fmt(units * unit)}",
            )
        return units

    def ppm(self, field: str, value: Decimal, ppm_per_unit: int, unit: str) -> int:
        scaled = value * ppm_per_unit
        ppm = int(scaled.to_integral_value())
        if scaled != ppm:
            step = Decimal(1) / ppm_per_unit
            self.problems.add(
                field,
                f"{_fmt(value)} {unit} is finer than the engine's resolution of {_fmt(step)} {unit} "
                f"(1 ppm); round it to e.g. {_fmt(value.quantize(step))}",
            )
        return ppm


def _min_cycle_spread_bps(min_net_bps: Decimal, maker_fee_bps: Decimal) -> Decimal:
    """Return the buy->sell spread (bps) at which a cycle nets exactly ``min_net_bps`` of its cost.

    As the core's ledger counts it (``ledger.min_sell_price``): a buy of cost P pays fee P·f, the
    sell at P(1+s) pays P(1+s)·f, and net = P(1+s)(1-f) - P(1+f) >= m·P when s >= (m + 2f) / (1-f).
    """
    m, f = min_net_bps / _BPS_PER_UNIT, maker_fee_bps / _BPS_PER_UNIT
    return (m + 2 * f) / (1 - f) * _BPS_PER_UNIT
