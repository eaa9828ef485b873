"""What one backtest window scores: net PnL, drawdown, time at the inventory rail, cycles closed.

The search maximises one number (``score``), a documented scalarisation of the four objectives,
all in the symbol's quote currency so they add up::

    score = net_pnl - DRAWDOWN_WEIGHT * max_drawdown
            - RAIL_WEIGHT * budget * at_rail_share + CYCLE_WEIGHT * budget * cycles_closed

``net_pnl`` is the realized PnL of closed cycles after both fees; ``max_drawdown`` the deepest
fall of the equity (budget + cash flow + inventory at the close) from its running peak;
``at_rail_share`` the share of candles with the inventory or the committed quote at >= 95 % of its
rail (the ladder can no longer buy); ``budget`` the symbol's ``max_quote``. A window that broke a
rail scores minus infinity: such parameters are never suggested.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from nutcracker.backtest.runner import SymbolTrace

DRAWDOWN_WEIGHT: Final = 0.5  # a quote unit of drawdown costs half a unit of profit
RAIL_WEIGHT: Final = 0.02  # all the time at the rail costs 2 % of the budget
CYCLE_WEIGHT: Final = 0.00001  # a closed cycle is worth 0.1 bps of the budget: a tie-breaker
AT_RAIL: Final = 0.95  # as the backtest summary's at_rail_pct


@dataclass(frozen=True, slots=True)
class Metrics:
    """The objectives of one backtest window, in the quote currency, and their score."""

    net_pnl_quote: float
    max_drawdown_quote: float
    at_rail_pct: float
    cycles_closed: int
    rail_violations: int
    score: float

    def as_dict(self) -> dict[str, float | int | None]:
        """Return the metrics rounded for a record (a score of minus infinity as None)."""
        out: dict[str, float | int | None] = {k: v for k, v in asdict(self).items() if k != "score"}
        for key in ("net_pnl_quote", "max_drawdown_quote", "at_rail_pct"):
            out[key] = round(float(asdict(self)[key]), 6)
        out["score"] = round(self.score, 6) if math.isfinite(self.score) else None
        return out


def _held_steps(trace: SymbolTrace, values: list[int], n: int) -> npt.NDArray[np.float64]:
    """Return ``values`` (one per pulse) held from each pulse until the next, per candle."""
    out = np.zeros(n, dtype=np.float64)
    if trace.pulse_index:
        index = np.asarray(trace.pulse_index)
        ends = np.append(index[1:], n)
        out[index[0] :] = np.repeat(np.asarray(values, dtype=np.float64), ends - index)
    return out


def measure(trace: SymbolTrace) -> Metrics:
    """Return the metrics of one symbol's backtest trace."""
    params = trace.params
    precision = params.market.precision
    n = len(trace.candles.ts_ms)
    tick, lot, unit = float(precision.tick), float(precision.lot), float(precision.quote_unit)
    budget = float(precision.qu_to_quote(params.rails.max_quote_qu))
    close = trace.candles.close.astype(np.float64) * tick
    held = _held_steps(trace, trace.held_lots, n) * lot
    equity = budget + _held_steps(trace, trace.cash_qu, n) * unit + held * close
    drawdown = float(np.max(np.maximum.accumulate(equity) - equity)) if n else 0.0
    committed = _held_steps(trace, trace.committed_qu, n) * unit
    max_base = float(precision.lots_to_qty(params.rails.max_base_lots))
    at_rail = (held >= AT_RAIL * max_base) | (committed >= AT_RAIL * budget)
    share = float(at_rail.mean()) if n else 0.0
    pnl = float(precision.qu_to_quote(trace.realized_pnl_qu))
    score = pnl - DRAWDOWN_WEIGHT * drawdown - RAIL_WEIGHT * budget * share
    score += CYCLE_WEIGHT * budget * trace.cycles_closed
    if trace.rail_violations:
        score = -math.inf
    return Metrics(pnl, drawdown, share * 100, trace.cycles_closed, trace.rail_violations, score)
