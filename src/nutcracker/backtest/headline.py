"""The few lines a trader reads first about one symbol's run, as plain text.

One source for the report's headline and the terminal's summary: period, return against the
yardsticks (buy-and-hold, the best static grid), risk, activity. summary.json keeps every digit;
these lines round what a person compares.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["RETURN_LINE", "cell", "headline", "number", "scalar", "signed_pct"]

RETURN_LINE: Final = 1  # the index of the line with the return and the yardsticks
_ROUNDED: Final = ("_quote", "_pct", "_per_day", "_per_fill", "days")


def scalar(value: Any) -> str:
    """A summary value as text: thousands separated, six significant digits for floats."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value is None:
        return "—"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def number(value: Any) -> float | None:
    """The value as a float when it is a number or a decimal string (money is a string in the summary)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def cell(key: str, value: Any) -> str:
    """A summary value as a trader reads it: quote amounts in cents, percentages to two decimals."""
    n = number(value)
    if n is not None and math.isfinite(n) and key.endswith(_ROUNDED):
        return f"{n:,.2f}"
    return scalar(value)


def signed_pct(value: Any) -> str:
    n = number(value)
    return "—" if n is None else f"{n:+,.2f} %"


def headline(symbol: str, section: Mapping[str, Any]) -> list[str]:
    """Return the headline of one symbol's summary section, one line per topic."""
    quote = symbol.rpartition("/")[2] or "quote"
    mine = number(section.get("return_pct"))
    lines = [
        f"{section.get('first_candle', '?')} to {section.get('last_candle', '?')} "
        f"({cell('days', section.get('days'))} days)",
        f"return {signed_pct(mine)}",
    ]
    baselines = section.get("baselines")
    if isinstance(baselines, Mapping):
        hold = baselines.get("buy_and_hold")
        if isinstance(hold, Mapping):
            lines[RETURN_LINE] += f" · buy and hold {signed_pct(hold.get('return_pct'))}"
        grids = [
            (name.removeprefix("static_grid_").replace("pct", " %"), number(row.get("return_pct")))
            for name, row in baselines.items()
            if name.startswith("static_grid") and isinstance(row, Mapping)
        ]
        scored = [(label, r) for label, r in grids if r is not None]
        if scored:
            label, best = max(scored, key=lambda item: item[1])
            lines[RETURN_LINE] += f" · best static grid ({label}) {signed_pct(best)}"
            if mine is not None and best > mine:
                lines.append(f"The static {label} grid did better over this period.")
    lines.append(
        f"max drawdown {cell('_pct', section.get('max_drawdown_pct'))} % · realized PnL "
        f"{cell('_quote', section.get('realized_pnl_quote'))} {quote} after fees · fees "
        f"{cell('_quote', section.get('fees_quote'))} {quote}"
    )
    lines.append(
        f"{scalar(section.get('cycles_closed'))} cycles ({cell('_per_day', section.get('cycles_per_day'))}"
        f" a day) · {cell('_per_fill', section.get('cancels_per_fill'))} cancels per fill"
    )
    lines.append(
        f"in the market {cell('_pct', section.get('in_market_pct'))} % of the time · loaded (holding, "
        f"no buy resting) {cell('_pct', section.get('loaded_pct'))} % · at a rail "
        f"{cell('_pct', section.get('at_rail_pct'))} %"
    )
    return lines
